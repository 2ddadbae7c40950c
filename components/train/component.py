"""train: the MNIST trainer run inside the pipeline's own pod, on a GPU when it has one.

A ``pfs_step`` like a user's own: the function is
:func:`kfp_pachyderm.trainer.step_functions.train`, and this declaration is the one place its
component's checks, metrics and image are given.
"""

from kfp_pachyderm.kfp.checks import at_least
from kfp_pachyderm.kfp.images import image
from kfp_pachyderm.steps.component import pfs_step
from kfp_pachyderm.trainer import step_functions

train = pfs_step(
    output_repo="model",
    image=image(step_functions.TRAINER_GPU_IMAGE),
    checks={"epochs": at_least(1), "batch_size": at_least(1)},
    metrics="metrics.json",
    datum_tries=1,  # a training run that fails is not retried whole
)(step_functions.train)
