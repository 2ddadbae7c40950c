"""train: the MNIST trainer run inside the pipeline's own pod, on a GPU when it has one."""

from kfp import dsl

from kfp_pachyderm.kfp.images import image


@dsl.component(base_image=image("kfp-pachyderm-trainer-gpu"), install_kfp_package=False)
def train(
    output_repo: str,
    commit: dsl.Output[dsl.Artifact],
    metrics: dsl.Output[dsl.Metrics],
    input_commit: dsl.Input[dsl.Artifact] = None,
    input_ref: str = "",
    output_branch: str = "master",
    epochs: int = 2,
    batch_size: int = 64,
    kfp_run_id: str = "",
    kfp_task_id: str = "",
) -> str:
    """Train on the input commit (mnist.npz layout); write ``/model`` (SavedModel) and
    ``/metrics.json`` into an output commit; return its ID. Ask for GPUs with
    ``kfp_pachyderm.with_gpu(task)``: on a GPU it uses mixed precision and XLA, on a
    CPU the same code runs unchanged; a GPU requested in a cluster but not visible fails fast.
    """
    from kfp_pachyderm.bodies.train import TrainInputs, run

    return run(TrainInputs.of(locals()))
