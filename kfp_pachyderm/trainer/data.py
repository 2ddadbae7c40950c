"""Demo data in the ``mnist.npz`` layout (``x_train``, ``y_train``, ``x_test``, ``y_test``),
made offline from scikit-learn's bundled handwritten digits: nothing is downloaded at run time.
The 8x8 digits are scaled to 28x28 so code written for MNIST runs on them unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kfp_pachyderm.errors import UsageError

MNIST_KEYS = ("x_train", "y_train", "x_test", "y_test")


def digits_as_mnist(test_fraction: float = 0.2, seed: int = 0) -> dict[str, np.ndarray]:
    """scikit-learn's 1,797 digits as 28x28 uint8 images with integer labels, split in two."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.kron(digits.images, np.ones((3, 3)))  # 8x8 -> 24x24
    images = np.pad(images, ((0, 0), (2, 2), (2, 2)))  # -> 28x28, like MNIST
    images = np.clip(images * 16, 0, 255).astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    order = np.random.default_rng(seed).permutation(len(images))
    cut = int(len(images) * (1 - test_fraction))
    train, test = order[:cut], order[cut:]
    return {
        "x_train": images[train],
        "y_train": labels[train],
        "x_test": images[test],
        "y_test": labels[test],
    }


def write_mnist_npz(path: Path, arrays: dict[str, np.ndarray] | None = None) -> Path:
    """Write ``arrays`` (default: :func:`digits_as_mnist`) as an mnist.npz file."""
    arrays = arrays if arrays is not None else digits_as_mnist()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def load_mnist_npz(path: Path) -> dict[str, np.ndarray]:
    """Read an mnist.npz file, checking it has the four arrays."""
    with np.load(path) as data:
        missing = [k for k in MNIST_KEYS if k not in data]
        if missing:
            raise UsageError(f"{path} lacks {', '.join(missing)}: expected {', '.join(MNIST_KEYS)}")
        return {k: data[k] for k in MNIST_KEYS}
