"""The issue summarization example's data and model: demo issues are real and repeatable, a
bad issues CSV is refused with a message that says what is wrong, vocabularies come only from
what they are given, and the exported SavedModel turns raw text into titles in a process that
has none of this package's code."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kfp_pachyderm.errors import KfpPachydermError
from kfp_pachyderm.summarizer.data import (
    COLUMNS,
    check_issues_csv,
    read_issues,
    write_demo_issues,
)
from kfp_pachyderm.summarizer.model import fit_vocabularies, summarize, train_summarizer
from kfp_pachyderm.summarizer.text import clean

BODIES = [
    "Crash on save: see https://example.com/issue?id=1 for the <b>trace</b>.",
    "",
    "Säve fails!!! When the `--force` flag is 'on', it doesn't work...",
    "tabs\tand\nnew\r\nlines, a_b and -- dashes",
]


@pytest.mark.slow
def test_demo_issues_are_repeatable_and_have_the_seed_layout(tmp_path: Path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    rows = write_demo_issues(first)
    assert rows >= 200
    assert write_demo_issues(second) == rows
    assert first.read_bytes() == second.read_bytes()
    with first.open(encoding="utf-8", newline="") as handle:
        assert tuple(next(csv.reader(handle))) == COLUMNS
    assert check_issues_csv(first) == rows
    issues = read_issues(first)
    assert len(issues) == rows == len({url for url, _, _ in issues})
    for url, title, body in issues:
        assert url.startswith("https://") and title and "\n" not in title
        assert 100 <= len(body) <= 2000
    assert write_demo_issues(tmp_path / "few.csv", limit=5) == 5


BAD_FILES = {
    "lacks a column": (b"issue_url,body\nu,b\n", "lacks column(s) issue_title"),
    "empty": (b"", "empty file"),
    "blank": (b" \n\n", "empty file"),
    "not UTF-8": ("issue_url,issue_title,body\nu,t,caf\xe9\n".encode("latin-1"), "not UTF-8"),
    "header only": (b"issue_url,issue_title,body\n", "no data rows"),
    "ragged row": (b"issue_url,issue_title,body\nu,t,b\nu,t\n", "line 3 has 2 fields"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_issues_csv_is_refused_naming_the_file_and_the_problem(tmp_path: Path, case: str):
    content, problem = BAD_FILES[case]
    path = tmp_path / "issues.csv"
    path.write_bytes(content)
    with pytest.raises(KfpPachydermError) as refused:
        check_issues_csv(path)
    message = str(refused.value)
    assert str(path) in message and problem in message and "\n" not in message


def test_a_missing_issues_csv_is_refused(tmp_path: Path):
    with pytest.raises(KfpPachydermError, match="no such file"):
        check_issues_csv(tmp_path / "absent.csv")


def test_a_good_issues_csv_is_read_in_order_whatever_its_column_order(tmp_path: Path):
    path = tmp_path / "issues.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["body", "extra", "issue_title", "issue_url"])
        writer.writerow(["first, with a comma\nand a newline", "x", "One", "u1"])
        writer.writerow(["second", "y", "Two", "u2"])
    assert check_issues_csv(path) == 2
    assert read_issues(path) == [
        ("u1", "One", "first, with a comma\nand a newline"),
        ("u2", "Two", "second"),
    ]


def test_clean_lowercases_replaces_urls_and_splits_punctuation():
    assert clean(BODIES[0]) == "crash on save see url for the trace ."
    assert clean(BODIES[2]) == "s ve fails ! when the force flag is on , it doesn't work ."
    assert clean(BODIES[3]) == "tabs and new lines , a b and dashes"


@pytest.mark.slow
def test_the_model_cleans_text_in_its_graph_exactly_as_clean_does():
    from kfp_pachyderm.summarizer.model import clean_in_graph

    texts = [*BODIES, "K\u212a İ ΑΒΓ", "a\x0bb\x1cc\x0cd", "'x' -y- ...?! www.a.com/B), HTTP://X"]
    in_graph = [text.decode("utf-8") for text in clean_in_graph(texts).numpy()]
    assert in_graph == [clean(text) for text in texts]


def test_vocabularies_are_the_most_frequent_tokens_of_what_is_given():
    bodies, titles = ["b a", "a b c", "d"], ["Fix it", "fix IT now"]
    body_vocab, title_vocab = fit_vocabularies(bodies, titles, body_size=3, title_size=4)
    assert body_vocab == ["a", "b", "c"]
    assert title_vocab == ["[start]", "[end]", "fix", "it"]
    assert fit_vocabularies(bodies, titles, 3, 4) == (body_vocab, title_vocab)
    assert fit_vocabularies(["z"], ["y"]) == (["z"], ["[start]", "[end]", "y"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("summarizer")
    write_demo_issues(folder / "issues.csv")
    pairs = [(body, title) for _, title, body in read_issues(folder / "issues.csv")][:600]
    body_vocab, title_vocab = fit_vocabularies(
        [body for body, _ in pairs], [title for _, title in pairs]
    )
    metrics = train_summarizer(pairs, body_vocab, title_vocab, folder / "model", epochs=1)
    return folder / "model", metrics


@pytest.mark.slow
def test_training_reports_its_metrics(trained: tuple[Path, dict]):
    _, metrics = trained
    assert metrics["examples"] >= 200 and metrics["epochs"] == 1
    assert metrics["train_loss"] > 0 and 0 <= metrics["train_token_accuracy"] <= 1
    assert 0 < metrics["seconds"] < 60


SERVE = """
import json, sys
import tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
(_, inputs), outputs = serve.structured_input_signature, serve.structured_outputs
titles = serve(body=tf.constant(json.loads(sys.argv[2])))["title"]
print(json.dumps({
    "inputs": {name: spec.dtype.name for name, spec in inputs.items()},
    "outputs": {name: spec.dtype.name for name, spec in outputs.items()},
    "dtype": titles.dtype.name,
    "titles": [title.decode("utf-8") for title in titles.numpy()],
}))
"""


@pytest.mark.slow
def test_the_saved_model_writes_titles_from_raw_text_in_a_fresh_process(
    trained: tuple[Path, dict],
):
    model_dir, _ = trained
    done = subprocess.run(
        [sys.executable, "-c", SERVE, str(model_dir), json.dumps(BODIES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    served = json.loads(done.stdout.splitlines()[-1])
    assert served["inputs"] == {"body": "string"}
    assert served["outputs"] == {"title": "string"}
    assert served["dtype"] == "string" and len(served["titles"]) == len(BODIES)
    assert summarize(model_dir, BODIES) == served["titles"]
    assert summarize(model_dir, []) == []
