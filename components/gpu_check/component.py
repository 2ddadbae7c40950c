"""gpu_check: record which devices TensorFlow sees, next to the listing of the input commit.

A ``pfs_step`` like a user's own: the function is
:func:`kfp_pachyderm.trainer.step_functions.gpu_check`.
"""

from kfp_pachyderm.kfp.images import image
from kfp_pachyderm.steps.component import pfs_step
from kfp_pachyderm.trainer import step_functions

gpu_check = pfs_step(output_repo="gpu-check", image=image(step_functions.TRAINER_GPU_IMAGE))(
    step_functions.gpu_check
)
