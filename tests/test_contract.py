"""A component's declared contract: the inputs its body sees, the signature KFP compiles, and
the checks the command line derives from where a pipeline passes its parameters."""

import inspect
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kfp import compiler, dsl

from kfp_pachyderm.cli.parameter_flow import parameter_destinations
from kfp_pachyderm.errors import UsageError
from kfp_pachyderm.kfp.checks import at_least, check_repo
from kfp_pachyderm.kfp.cluster import use_pachyderm
from kfp_pachyderm.kfp.compile import (
    component_names,
    components_dir,
    inputs_table,
    load_component,
    with_inputs_table,
)
from kfp_pachyderm.kfp.contract import (
    CommitOutput,
    Contract,
    commit_input,
    optional,
    parameter,
)
from kfp_pachyderm.pfs.refs import CommitRef
from kfp_pachyderm.steps.component import pfs_step

COMMIT = "0123456789ab4def0123456789abcdef"


@dataclass(frozen=True, kw_only=True)
class CountInputs(CommitOutput):
    """A small contract of the test's own."""

    data: CommitRef = commit_input("what to count")
    repo: str = parameter("where the count goes", check=check_repo)
    times: int = parameter("how often", 1, check=at_least(1))
    limit: int | None = optional("at most this many")
    label: str | None = optional("a label")


ran: list[CountInputs] = []


def count(inputs: CountInputs) -> None:
    ran.append(inputs)


CONTRACT = Contract("count", CountInputs, count, "Count the files of a commit.")


def namespace(**given) -> dict:
    base = {"commit": None, "data": None, "data_ref": f"images@{COMMIT}", "repo": "counts"}
    base |= {"times": 1, "limit": -1, "label": "", "kfp_run_id": "", "kfp_task_id": ""}
    return base | given


def test_the_body_sees_one_commit_and_none_for_unset_values():
    CONTRACT(namespace())
    inputs = ran.pop()
    assert inputs.data == CommitRef("images", commit=COMMIT)
    assert (inputs.limit, inputs.label, inputs.times) == (None, None, 1)
    CONTRACT(namespace(limit=0, label="x"))
    assert (ran[-1].limit, ran[-1].label) == (0, "x")


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"data_ref": ""}, "count needs exactly one of data and data_ref (got data_ref='')"),
        ({"data": dsl.Artifact(uri=f"pfs://default/images@{COMMIT}")}, "exactly one of data"),
        ({"data_ref": "not a ref!"}, "not a ref!"),
        ({"times": 0}, "parameter times=0: must be at least 1"),
        ({"repo": "bad repo"}, "invalid repo name 'bad repo'"),
    ],
)
def test_bad_inputs_are_refused_before_the_body_runs(given: dict, named: str):
    ran.clear()
    with pytest.raises(UsageError) as refused:
        CONTRACT(namespace(**given))
    assert named in str(refused.value) and ran == []


def test_the_generated_component_compiles_with_the_declared_signature(tmp_path: Path):
    path = tmp_path / "count.yaml"
    compiler.Compiler().compile(CONTRACT.component(), str(path))
    spec = yaml.safe_load(path.read_text())
    inputs = spec["root"]["inputDefinitions"]
    parameters = inputs["parameters"]
    assert set(parameters) == {"data_ref", "repo", "times", "limit", "label"} | {
        "kfp_run_id",
        "kfp_task_id",
    }
    assert "defaultValue" not in parameters["repo"]
    assert parameters["limit"]["defaultValue"] == -1.0 and parameters["label"]["defaultValue"] == ""
    assert set(inputs["artifacts"]) == {"data"}
    assert set(spec["root"]["outputDefinitions"]["artifacts"]) == {"commit"}
    assert f"from {__name__} import CONTRACT" in path.read_text()


def test_the_inputs_table_lists_every_parameter_once():
    table = CONTRACT.inputs_table()
    rows = [line.split("|")[1].strip() for line in table.splitlines()[2:]]
    assert rows == [
        "`repo`",
        "`data` / `data_ref`",
        "`times`",
        "`limit`",
        "`label`",
        "`kfp_run_id`",
        "`kfp_task_id`",
    ]
    assert "| `limit` | int | `-1` (not set) | at most this many |" in table


@pytest.mark.parametrize("component", component_names())
def test_each_readme_holds_its_contracts_inputs_table(component: str):
    readme = (components_dir() / component / "README.md").read_text()
    assert with_inputs_table(readme, inputs_table(component)) == readme, (
        f"components/{component}/README.md is stale: run `kfp-pachyderm compile`"
    )


def test_a_pipeline_parameter_gets_the_checks_of_the_inputs_it_is_passed_to():
    commit_data = load_component("commit_data")

    @pfs_step(output_repo="words")
    def words(raw, out, upper: bool = False):
        pass

    @dsl.pipeline
    def own(source: str, repo: str, upper: bool, token_secret: str, note: str):
        data = use_pachyderm(commit_data(source=source, repo=repo), token_secret=token_secret)
        words(raw=data.outputs["commit"], upper=upper)
        commit_data(source=source, repo=f"{note}-copy")

    found = {name: [d.where for d in found] for name, found in parameter_destinations(own).items()}
    assert found["repo"] == ["commit_data.repo"]
    assert found["source"] == ["commit_data.source", "commit_data.source"]
    assert found["token_secret"] == ["a Kubernetes object name"]
    assert found["upper"] == [] and found["note"] == []  # a step's own keyword; formatted text


def test_a_component_loaded_from_its_yaml_brings_its_checks(tmp_path: Path):
    """A pipeline built from a component's YAML alone (no body module imported yet) still has
    its parameters checked by that component's contract."""
    yaml_path = str(components_dir() / "commit_data" / "component.yaml")
    script = f"""
import sys
from kfp import components, dsl
from kfp_pachyderm.cli.parameter_flow import parameter_destinations
commit_data = components.load_component_from_file({yaml_path!r})
assert "kfp_pachyderm.bodies.commit_data" not in sys.modules

@dsl.pipeline
def own(repo: str):
    commit_data(source="/data", repo=repo)

found = parameter_destinations(own)
print(sorted(d.where for d in found["repo"]))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "['commit_data.repo']"


def test_an_unset_value_passes_only_where_the_input_may_be_unset():
    resolve = load_component("resolve_commit")

    @dsl.pipeline
    def own(data: str, source: str):
        resolve(ref=data, commit_source=source)

    found = parameter_destinations(own)
    (ref,) = found["data"]
    (source,) = found["source"]
    with pytest.raises(UsageError, match="parameter data"):
        ref.check("data", "")
    source.check("source", "")  # commit_source is optional
    with pytest.raises(UsageError, match="parameter source='/no/such'"):
        source.check("source", "/no/such")


def test_a_steps_required_parameter_has_no_default_in_its_signature_or_table():
    @pfs_step(output_repo="counted")
    def count(raw, out, times: int, label: str = "x"):
        """Count.

        Args:
            times: how often
        """

    source = inspect.getsource(count.python_func)
    assert "    times: int,\n" in source and "    label: str = 'x',\n" in source
    table = count.inputs_table()
    assert "| `times` | int |  | how often |" in table
    assert "| `label` | str | `'x'` |  |" in table
