"""The distributed TensorFlow smoke job of the tf_distributed_sample pipeline (the seed's
tf_sample): every replica reports its role in the cluster, the devices it sees and the input
commits' files, and runs one small computation. Its logs are the result: start_tfjob versions
them into the output commit.

    python -m kfp_pachyderm.tfjob.sample
"""

from __future__ import annotations

import json
import os
import socket
import sys

from kfp_pachyderm.pfs.connection import connect
from kfp_pachyderm.tfjob.env import input_commits


def main() -> int:
    """Entry point of each replica."""
    import tensorflow as tf

    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {"type": "chief", "index": 0})
    print(f"replica {task['type']}-{task['index']} on {socket.gethostname()}")
    print(f"cluster: {json.dumps(config.get('cluster', {}), sort_keys=True)}")
    print(f"devices: {[d.name for d in tf.config.list_physical_devices()]}")
    inputs = input_commits()
    client = connect() if inputs else None
    for ref in inputs:
        for info in client.pfs.walk_file(file=ref.with_path(ref.path or "/").pfs_file()):
            print(f"input {ref.repo}: {info.file.path} {info.size_bytes} bytes")
    matrix = tf.random.stateless_normal((256, 256), seed=(task["index"], 7))
    print(f"checksum: {float(tf.reduce_sum(tf.linalg.matmul(matrix, matrix))):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
