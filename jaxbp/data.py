"""Datasets for the demos: scikit-learn's 8x8 digits (shipped with scikit-learn, no
network needed) and a user's own arrays in an ``.npz`` file.

Images come out channels-last, ``(n, height, width, channels)``, as float32 in
``[0, 1]``; labels as int32 class indices.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


class Dataset(NamedTuple):
    """A classification dataset split into training and held-out parts.

    Attributes:
      x_train: ``(n_train, *input_shape)`` float32.
      y_train: ``(n_train,)`` int32 labels in ``[0, classes)``.
      x_test: ``(n_test, *input_shape)`` float32.
      y_test: ``(n_test,)`` int32.
      classes: the number of classes.
      name: a short description for reports.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int
    name: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One example's shape, without the batch axis."""
        return tuple(self.x_train.shape[1:])


def digits(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1797 images, 10 classes).

    The split is stratified (every class keeps its share in both parts) and fixed by
    ``seed``; pixel values 0..16 are scaled to [0, 1].

    Args:
      seed: the split's seed.
      test_fraction: the held-out share, in (0, 1).

    Returns:
      A :class:`Dataset` of ``(n, 8, 8, 1)`` images.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the digits data ships with scikit-learn: pip install "
                          "'jaxbp[demo]'") from e
    if not 0 < test_fraction < 1:
        raise ValueError(f"digits: test_fraction must be in (0, 1), got {test_fraction!r}")
    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / np.float32(16.0))[..., None]
    y = bunch.target.astype(np.int32)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), bool)
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        test[members[:int(round(test_fraction * len(members)))]] = True
    train_idx = rng.permutation(np.flatnonzero(~test))
    test_idx = np.flatnonzero(test)
    return Dataset(x[train_idx], y[train_idx], x[test_idx], y[test_idx], 10,
                   "scikit-learn 8x8 digits")


def load_npz(path) -> Dataset:
    """A user's dataset from an ``.npz`` holding ``x_train, y_train, x_test, y_test``.

    Images may be ``(n, h, w)`` (a channel axis is added) or ``(n, h, w, c)``; flat
    features ``(n, d)`` are kept. Integer pixels (e.g. MNIST's uint8) are divided by
    255, as are float pixels larger than 1.5. Labels are integer class indices
    ``(n,)``, or one-hot ``(n, classes)`` (turned into indices).

    Args:
      path: the ``.npz`` file, e.g. MNIST saved with
        ``np.savez("mnist.npz", x_train=..., y_train=..., x_test=..., y_test=...)``.

    Returns:
      A :class:`Dataset`.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"load_npz: path {path!r} does not exist")
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in NPZ_KEYS if k not in data.files]
        if missing:
            raise ValueError(f"load_npz: {path!r} must hold arrays {list(NPZ_KEYS)}, "
                             f"missing {missing} (found {sorted(data.files)})")
        arrays = {k: np.asarray(data[k]) for k in NPZ_KEYS}
    xs = [_images(arrays[k], k, path) for k in ("x_train", "x_test")]
    ys = [_labels(arrays[k], k, path) for k in ("y_train", "y_test")]
    for x, y, part in zip(xs, ys, ("train", "test")):
        if len(x) != len(y):
            raise ValueError(f"load_npz: x_{part} and y_{part} must have the same number "
                             f"of rows, got {len(x)} and {len(y)}")
    if xs[0].shape[1:] != xs[1].shape[1:]:
        raise ValueError(f"load_npz: x_train and x_test must have the same example "
                         f"shape, got {tuple(xs[0].shape[1:])} and {tuple(xs[1].shape[1:])}")
    scale = _pixel_scale(arrays["x_train"], xs[0])
    classes = int(max(ys[0].max(initial=0), ys[1].max(initial=0))) + 1
    return Dataset(xs[0] / scale, ys[0], xs[1] / scale, ys[1], max(classes, 2),
                   os.path.basename(path))


def _images(x, name, path):
    if x.ndim not in (2, 3, 4) or len(x) == 0:
        raise ValueError(f"load_npz: {name} in {path!r} must have shape (n, d), (n, h, w) "
                         f"or (n, h, w, c) with n > 0, got {tuple(x.shape)}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise TypeError(f"load_npz: {name} must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float32)
    return x[..., None] if x.ndim == 3 else x


def _pixel_scale(raw, x):
    if np.issubdtype(raw.dtype, np.integer) or float(np.max(x, initial=0.0)) > 1.5:
        return np.float32(255.0)
    return np.float32(1.0)


def _labels(y, name, path):
    if y.ndim == 2 and y.shape[1] > 1:
        y = np.argmax(y, axis=1)
    y = y.reshape(-1) if y.ndim == 2 else y
    if y.ndim != 1:
        raise ValueError(f"load_npz: {name} in {path!r} must be labels (n,) or one-hot "
                         f"(n, classes), got shape {tuple(y.shape)}")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(y == np.round(y)):
            raise ValueError(f"load_npz: {name} must hold integer class labels, got "
                             f"non-integer values such as {y[y != np.round(y)][0]!r}")
    elif not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"load_npz: {name} must hold integer labels, got dtype {y.dtype}")
    if len(y) and y.min() < 0:
        raise ValueError(f"load_npz: {name} must hold labels >= 0, got {y.min()}")
    return y.astype(np.int32)
