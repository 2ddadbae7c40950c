"""gpu_check: record which devices TensorFlow sees, next to the listing of the input commit."""

from kfp import dsl

from kfp_pachyderm.kfp.images import image


@dsl.component(base_image=image("kfp-pachyderm-trainer-gpu"), install_kfp_package=False)
def gpu_check(
    output_repo: str,
    commit: dsl.Output[dsl.Artifact],
    input_commit: dsl.Input[dsl.Artifact] = None,
    input_ref: str = "",
    output_branch: str = "master",
    kfp_run_id: str = "",
    kfp_task_id: str = "",
) -> str:
    """Commit ``devices.json`` (GPUs TensorFlow sees, driver, TF build) and
    ``input-listing.txt`` (the input commit's files) to the output repo; return the commit ID.
    """
    from kfp_pachyderm.bodies.gpu_check import GpuCheckInputs, run

    return run(GpuCheckInputs.of(locals()))
