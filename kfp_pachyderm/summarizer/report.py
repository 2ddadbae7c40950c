"""What a local run of issue_summarization prints at its end (a reporter of its spec,
:mod:`kfp_pachyderm.kfp.pipeline_spec`): the titles the trained model writes for held-out
issues, next to their true titles."""

from __future__ import annotations

import os

from kfp_pachyderm.kfp.pipeline_spec import LocalResult, OutputBranch
from kfp_pachyderm.pfs.transfer import read_tree


def report_titles(result: LocalResult, split: OutputBranch, count: int = 5) -> None:
    """The titles the model of ``result`` writes for the first ``count`` test issues of the
    ``split`` branch, each under its issue's URL and above its true title."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from kfp_pachyderm.summarizer.data import read_issues
    from kfp_pachyderm.summarizer.model import summarize

    model, scratch = result.commit, result.scratch
    read_tree(result.client, model.with_path("/model"), scratch / "model", digest=False)
    read_tree(
        result.client, result.branch(split).with_path("/test"), scratch / "test", digest=False
    )
    held_out = [
        row for path in sorted((scratch / "test").rglob("*.csv")) for row in read_issues(path)
    ]
    held_out = held_out[:count]
    titles = summarize(scratch / "model", [body for _, _, body in held_out])
    print(f"titles written by {model} for {len(held_out)} held-out issues:")
    for (url, true_title, _), written in zip(held_out, titles, strict=True):
        print(f"  {url}\n    written: {written!r}\n    true:    {true_title!r}")
