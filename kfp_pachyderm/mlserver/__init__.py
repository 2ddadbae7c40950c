"""Serving the library's TensorFlow SavedModels with MLServer (Apache-2.0), over the Open
Inference Protocol (V2) that KServe speaks.

:mod:`kfp_pachyderm.mlserver.runtime` is MLServer's custom runtime (copied into the image and
into each model directory, so it imports no kfp_pachyderm); :mod:`kfp_pachyderm.mlserver.settings`
writes the self-contained model directory that ``mlserver start <dir>`` serves and that an image
layer holds at ``/mnt/models`` or a KServe ``storageUri`` points at.
"""
