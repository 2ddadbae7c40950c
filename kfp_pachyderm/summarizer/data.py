"""Issues in the seed example's CSV layout: offline demo issues, validation of a user's file
before anything is committed, and reading the rows back.

The demo issues are real text that every environment already has, so nothing is downloaded:
each installed Python distribution's one-line summary stands for an issue title and its long
description for the body. Where too few distributions are installed, the standard library's
module docstrings (first line and the rest) make up the difference.
"""

from __future__ import annotations

import ast
import csv
import importlib.metadata
import io
import re
import sysconfig
import warnings
from collections.abc import Iterator
from pathlib import Path

from kfp_pachyderm.errors import UsageError

COLUMNS = ("issue_url", "issue_title", "body")
MIN_DEMO_ROWS = 200
MIN_BODY_CHARS = 100
MAX_BODY_CHARS = 2000

Issue = tuple[str, str, str]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _issue(url: str, title: str, body: str) -> Issue | None:
    title, body = _one_line(title), body.strip()
    if not title or len(body) < MIN_BODY_CHARS:
        return None
    return url, title, body[:MAX_BODY_CHARS].rstrip()


def _distribution_issues() -> list[Issue]:
    by_name: dict[str, Issue] = {}
    for dist in importlib.metadata.distributions():
        meta = dist.metadata
        name = meta["Name"] if meta is not None else None
        if not name:
            continue
        key = re.sub(r"[-_.]+", "-", name).lower()
        body = meta.get_payload() or meta["Description"] or ""
        issue = _issue(f"https://pypi.org/project/{key}/", meta["Summary"] or "", str(body))
        if issue is not None and key not in by_name:
            by_name[key] = issue
    return [by_name[key] for key in sorted(by_name)]


def _stdlib_issues() -> list[Issue]:
    root = Path(sysconfig.get_paths()["stdlib"])
    by_name: dict[str, Issue] = {}
    for path in [*root.glob("*.py"), *root.glob("*/*.py")]:
        parts = path.relative_to(root).with_suffix("").parts
        if "site-packages" in parts or any(part.startswith(("test", "idle")) for part in parts):
            continue
        name = ".".join(parts).removesuffix(".__init__")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
            continue
        title, _, body = (docstring or "").partition("\n")
        issue = _issue(f"https://docs.python.org/3/library/{name}.html", title, body)
        if issue is not None:
            by_name[name] = issue
    return [by_name[name] for name in sorted(by_name)]


def demo_issues(limit: int = 2000) -> list[Issue]:
    """Up to ``limit`` (url, title, body) demo issues from this environment's installed
    distributions, sorted by name, topped up from standard library docstrings when fewer than
    ``MIN_DEMO_ROWS`` distributions qualify. Deterministic for one environment."""
    issues = _distribution_issues()
    if len(issues) < MIN_DEMO_ROWS:
        issues += _stdlib_issues()
    return issues[:limit]


def write_demo_issues(path: Path, limit: int = 2000) -> int:
    """Write :func:`demo_issues` to ``path`` as an issues CSV (header, then one row per issue)
    and return the number of rows: demo data for the example that needs no download."""
    issues = demo_issues(limit)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(issues)
    return len(issues)


def _records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) of each CSV record in ``path``, header included, blank lines
    skipped; every problem with the file is raised as one line naming it."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UsageError(
            f"{path}: not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
            f"{error.start}); save the file as UTF-8"
        ) from None
    if not text.strip():
        raise UsageError(f"{path}: empty file; expected a header row {','.join(COLUMNS)}")
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise UsageError(f"{path}: line {line}: not valid CSV: {error}") from None
        if fields:
            yield line, fields


def _issues(path: Path) -> list[Issue]:
    records = _records(path)
    _, header = next(records)
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        raise UsageError(
            f"{path}: header lacks column(s) {', '.join(missing)}; it has "
            f"{', '.join(header)} and needs {', '.join(COLUMNS)}"
        )
    where = [header.index(column) for column in COLUMNS]
    issues = []
    for line, fields in records:
        if len(fields) != len(header):
            raise UsageError(
                f"{path}: line {line} has {len(fields)} fields, the header has {len(header)}"
            )
        url, title, body = (fields[index] for index in where)
        issues.append((url, title, body))
    if not issues:
        raise UsageError(f"{path}: a header but no data rows")
    return issues


def check_issues_csv(path: Path) -> int:
    """Check that ``path`` is an issues CSV the example can train on and return its number of
    rows, so a bad file is refused before it is committed. Raises KfpPachydermError with one
    line naming the file and the problem: missing, not UTF-8, empty, a header lacking any of
    COLUMNS, no data rows, or a row whose field count differs from the header's. Extra columns
    are allowed."""
    return len(_issues(path))


def read_issues(path: Path) -> list[Issue]:
    """The (url, title, body) of each row of the issues CSV at ``path``, in file order; checked
    as :func:`check_issues_csv` does."""
    return _issues(path)
