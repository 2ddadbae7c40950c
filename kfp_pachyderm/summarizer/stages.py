"""The stages of the issue-summarization pipeline (Pachyderm's seed 004) as functions over
directories, which the pipeline's steps call: ``split`` divides each CSV of issues into train
and test rows, ``pre_process`` cleans their text, ``train`` fits the vocabularies on the
cleaned training split and trains the title writer. Each CSV file is one datum, so a change to
one file reprocesses that file only.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

from kfp_pachyderm.errors import OperationError, UsageError
from kfp_pachyderm.summarizer.data import COLUMNS, check_issues_csv, read_issues
from kfp_pachyderm.summarizer.text import clean

DEMO_SHARDS = 16
Issue = tuple[str, str, str]


def write_issues(path: Path, rows: list[Issue]) -> None:
    """Write ``rows`` as a CSV in the seed's layout (header first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(rows)


def is_test_row(row: Issue, seed: int, test_fraction: float) -> bool:
    """Whether ``row`` is held out: a hash of the seed and the issue, so the same row lands
    on the same side on every run and whatever else the file holds."""
    digest = hashlib.sha256(f"{seed}\0{row[0]}\0{row[1]}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < test_fraction


def split_issues(raw: Path, out: Path, seed: int = 42, test_fraction: float = 0.1) -> None:
    """Split every CSV under ``raw`` into ``out/train/<path>`` and ``out/test/<path>``."""
    if not 0 < test_fraction < 1:
        raise UsageError(
            f"invalid test_fraction {test_fraction!r}: a number between 0 and 1, e.g. 0.1"
        )
    for source in sorted(raw.rglob("*.csv")):
        check_issues_csv(source)
        rows = read_issues(source)
        test = [row for row in rows if is_test_row(row, seed, test_fraction)]
        train = [row for row in rows if not is_test_row(row, seed, test_fraction)]
        relative = source.relative_to(raw)
        for part, chosen in (("train", train), ("test", test)):
            if chosen:  # a part with no rows is no file, as the data has none for it
                write_issues(out / part / relative, chosen)


def pre_process_issues(split: Path, out: Path) -> None:
    """Clean the title and body of every row of every CSV under ``split``, keeping paths."""
    for source in sorted(split.rglob("*.csv")):
        rows = [(url, clean(title), clean(body)) for url, title, body in read_issues(source)]
        write_issues(out / source.relative_to(split), rows)


def training_pairs(pre_processed: Path) -> list[tuple[str, str]]:
    """(body, title) of every cleaned training row, in path order."""
    pairs = []
    for source in sorted((pre_processed / "train").rglob("*.csv")):
        pairs += [(body, title) for _, title, body in read_issues(source)]
    return pairs


def train_title_writer(
    pre_processed: Path, out: Path, epochs: int = 2, batch_size: int = 64
) -> dict:
    """Fit the vocabularies on the cleaned training split, train, and write ``out/model`` (a
    SavedModel that takes raw issue text and returns a title), ``out/vocab/*.txt`` and
    ``out/metrics.json``; return the metrics."""
    from kfp_pachyderm.summarizer.model import fit_vocabularies, train_summarizer

    pairs = training_pairs(pre_processed)
    if not pairs:
        raise OperationError(
            f"no training rows under {pre_processed / 'train'}: the split left nothing to train on"
        )
    body_vocab, title_vocab = fit_vocabularies([b for b, _ in pairs], [t for _, t in pairs])
    (out / "vocab").mkdir(parents=True, exist_ok=True)
    (out / "vocab" / "body.txt").write_text("\n".join(body_vocab) + "\n")
    (out / "vocab" / "title.txt").write_text("\n".join(title_vocab) + "\n")
    metrics = train_summarizer(pairs, body_vocab, title_vocab, out / "model", epochs, batch_size)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics


def shard_of(row: Issue, shards: int) -> int:
    """The shard an issue belongs to, by a hash of its URL: stable as other issues come and go."""
    return int.from_bytes(hashlib.sha256(row[0].encode()).digest()[:8], "big") % shards


def write_demo_shards(folder: Path, shards: int = DEMO_SHARDS, limit: int = 2000) -> int:
    """The offline demo data (:func:`~kfp_pachyderm.summarizer.data.demo_issues`) as
    ``shards`` CSV files, so that a change to a few issues is a change to a few datums;
    return the number of issues."""
    from kfp_pachyderm.summarizer.data import demo_issues

    rows = demo_issues(limit)
    for shard in range(shards):
        chosen = [row for row in rows if shard_of(row, shards) == shard]
        if chosen:
            write_issues(folder / f"issues-{shard:02d}.csv", chosen)
    return len(rows)
