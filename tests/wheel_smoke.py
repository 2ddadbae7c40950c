"""Checks run by an installed kfp-pachyderm's own Python, outside the checkout.

tests/test_packaging.py copies this file out of the checkout and runs it with ``python -I`` in a
fresh virtualenv holding only the wheel and its declared dependencies (or, in the fast lane,
with ``--path-first`` an unpacked wheel). It imports only the standard library at the top,
so it runs in any environment; the last line it prints is a JSON report. (No ``from __future__
import annotations``: KFP reads the pipeline function's annotations as types.)

    python -I wheel_smoke.py imports --checkout /src --prefix /venv/lib/python3.11/site-packages
    PACHD_ADDRESS=grpc://127.0.0.1:1650 python -I wheel_smoke.py pipeline --checkout /src \
        --prefix /venv/lib/python3.11/site-packages --work /tmp/work
"""

import argparse
import importlib
import importlib.util
import json
import pkgutil
import sys
import traceback
from pathlib import Path

# The only modules that may fail to import here, each with the top-level modules whose absence
# may be the reason (the ImportError must name one):
# - the trainer's data and model modules import NumPy, which comes with the optional ``train``
#   extra (TensorFlow, scikit-learn); TensorFlow and Keras are imported inside functions
#   everywhere, so no other module needs that extra to import;
# - the MLServer runtime is a source file the wheel ships to copy into the MLServer image and
#   model directories; it imports NumPy and MLServer, which only that image has
#   (tests/test_mlserver_serving.py serves it with `mlserver start`).
TRAIN_EXTRA = {"numpy", "tensorflow", "keras", "sklearn"}
OPTIONAL_IMPORTS: dict[str, set[str]] = {
    "kfp_pachyderm.trainer.data": TRAIN_EXTRA,
    "kfp_pachyderm.trainer.model": TRAIN_EXTRA,
    "kfp_pachyderm.mlserver.runtime": {"mlserver", *TRAIN_EXTRA},
}


def outside_the_checkout(checkout: Path, prefix: Path) -> None:
    """Fail unless nothing on ``sys.path`` lies in ``checkout`` (but for this interpreter's own
    environment, which in the fast lane is the checkout's .venv) and ``kfp_pachyderm`` and its
    mapped packages load from under ``prefix``."""
    own = Path(sys.prefix).resolve()
    inside = [
        p
        for p in sys.path
        if p
        and Path(p).resolve().is_relative_to(checkout)
        and not Path(p).resolve().is_relative_to(own)
    ]
    assert not inside, f"sys.path holds the checkout {checkout}: {inside}"
    assert not Path.cwd().resolve().is_relative_to(checkout), f"cwd {Path.cwd()} is in {checkout}"
    for name in ("kfp_pachyderm", "kfp_pachyderm.components", "kfp_pachyderm.pipelines"):
        where = Path(importlib.import_module(name).__file__).resolve()
        assert where.is_relative_to(prefix), f"{name} loads from {where}, not from {prefix}"


def loaded_from_elsewhere(prefix: Path) -> list[str]:
    """Every loaded kfp_pachyderm module whose file is not under ``prefix``."""
    return sorted(
        f"{name}: {module.__file__}"
        for name, module in list(sys.modules.items())
        if name.split(".")[0] == "kfp_pachyderm"
        and not Path(getattr(module, "__file__", None) or prefix).resolve().is_relative_to(prefix)
    )


def import_everything(prefix: Path) -> dict:
    """Import every module of the installed package (pkgutil's walk over its files); a
    ``__main__`` module is only found, since importing it runs its command."""
    import kfp_pachyderm

    names: list[str] = []
    failed: dict[str, str] = {}
    skipped: dict[str, str] = {}
    walk = pkgutil.walk_packages(kfp_pachyderm.__path__, "kfp_pachyderm.", onerror=names.append)
    names += ["kfp_pachyderm", *(info.name for info in walk)]
    for name in sorted(set(names)):
        try:
            if name.endswith(".__main__"):  # runs its command when imported: only find it
                assert importlib.util.find_spec(name), f"{name} is not found"
                continue
            importlib.import_module(name)
        except ImportError as error:
            missing = (error.name or "").split(".")[0]
            if missing in OPTIONAL_IMPORTS.get(name, ()):
                skipped[name] = f"needs {missing}"
            else:
                failed[name] = traceback.format_exc()
        except Exception:
            failed[name] = traceback.format_exc()
    imported = sorted(set(names) - set(failed) - set(skipped))
    components = sorted(
        n.split(".")[2]
        for n in imported
        if n.startswith("kfp_pachyderm.components.") and n.endswith(".component")
    )
    return {
        "version": kfp_pachyderm.__version__,
        "imported": imported,
        "skipped": skipped,
        "failed": failed,
        "elsewhere": loaded_from_elsewhere(prefix),
        "components": components,
    }


def run_pipeline(work: Path, prefix: Path) -> dict:
    """Under kfp.local (SubprocessRunner, use_venv=False) against $PACHD_ADDRESS: the packaged
    commit_data component (its installed component.yaml) commits a folder, and a ``pfs_step``
    upper-cases it into a new commit; the output commit's files come back."""
    import os

    from kfp import components, dsl, local
    from pachyderm_sdk import Client

    from kfp_pachyderm import CommitRef, inspect_commit, pfs_step, read_provenance, read_tree
    from kfp_pachyderm.kfp.compile import components_dir

    @pfs_step(output_repo="shouted", glob="/")
    def shout(raw, out):
        """Upper-case every file, and say which library and Python ran the step."""
        import json
        import sys
        from pathlib import Path

        import kfp_pachyderm

        for path in sorted(Path(raw).rglob("*")):
            if path.is_file():
                target = Path(out) / path.relative_to(raw)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(path.read_text().upper())
        (Path(out) / "ran-with.json").write_text(
            json.dumps({"library": kfp_pachyderm.__file__, "python": sys.executable})
        )

    commit_data = components.load_component_from_file(
        str(components_dir() / "commit_data" / "component.yaml")
    )

    @dsl.pipeline
    def ingest_and_shout(source: str) -> str:
        raw = commit_data(source=source, repo="raw", dest_path="/")
        return shout(raw=raw.outputs["commit"]).outputs["Output"]

    source = work / "source"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("hello")
    (source / "sub" / "b.txt").write_text("wheel")
    local.init(local.SubprocessRunner(use_venv=False), pipeline_root=str(work / "root"))
    out_id = ingest_and_shout(source=str(source)).output

    client = Client.from_pachd_address(os.environ["PACHD_ADDRESS"])
    out = CommitRef("shouted", commit=out_id)
    read_tree(client, out.with_path("/"), work / "out")
    files = {
        p.relative_to(work / "out").as_posix(): p.read_text()
        for p in sorted((work / "out").rglob("*"))
        if p.is_file()
    }
    record = read_provenance(inspect_commit(client, out))
    return {
        "files": {k: v for k, v in files.items() if k != "ran-with.json"},
        "ran_with": json.loads(files.get("ran-with.json", "{}")),
        "step": record.step,
        "inputs": [[r.repo, r.commit] for r in map(CommitRef.parse, record.inputs)],
        "raw_head": inspect_commit(client, CommitRef("raw", branch="master")).commit.id,
        "elsewhere": loaded_from_elsewhere(prefix),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("check", choices=["imports", "pipeline"])
    parser.add_argument("--checkout", type=Path, required=True, help="the source tree to avoid")
    parser.add_argument("--prefix", type=Path, required=True, help="where the package must load")
    parser.add_argument("--work", type=Path, help="scratch folder of the pipeline check")
    parser.add_argument("--path-first", type=Path, help="put first on sys.path (an unpacked wheel)")
    args = parser.parse_args()
    if args.path_first:
        sys.path.insert(0, str(args.path_first))
    checkout, prefix = args.checkout.resolve(), args.prefix.resolve()
    outside_the_checkout(checkout, prefix)
    if args.check == "imports":
        report = import_everything(prefix)
    else:
        report = run_pipeline(args.work, prefix)
    report["sys_path"] = sys.path
    print(json.dumps(report))


if __name__ == "__main__":
    main()
