"""Datasets for the demos: scikit-learn's 8x8 digits (shipped with scikit-learn, no
network needed) and a user's own arrays in an ``.npz`` file.

Images come out channels-last, ``(n, height, width, channels)``, as float32 in
``[0, 1]``; labels as int32 class indices.
"""

from __future__ import annotations

import os
import zipfile
from typing import NamedTuple

import numpy as np

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
MAX_CLASSES = 100_000  # one output per class: more is a mistake, not a dataset
_ZIP_MAGIC = b"PK\x03\x04"
_NPY_MAGIC = b"\x93NUMPY"
_SAVE_HINT = ("save one with np.savez(path, x_train=..., y_train=..., x_test=..., "
              "y_test=...)")


class Dataset(NamedTuple):
    """A classification dataset split into training and held-out parts.

    Attributes:
      x_train: ``(n_train, *input_shape)`` float32.
      y_train: ``(n_train,)`` int32 labels in ``[0, classes)``.
      x_test: ``(n_test, *input_shape)`` float32.
      y_test: ``(n_test,)`` int32.
      classes: the number of classes.
      name: a short description for reports.
      notes: what loading did that the user may not expect (a rescaling, unused
        classes), one sentence each.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int
    name: str
    notes: tuple[str, ...] = ()

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
    if not 0 < test_fraction < 1:
        raise ValueError(f"digits: test_fraction must be in (0, 1), got {test_fraction!r}")
    images, target = _digits_arrays()
    x = (images.astype(np.float32) / np.float32(16.0))[..., None]
    y = target.astype(np.int32)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), bool)
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        test[members[:int(round(test_fraction * len(members)))]] = True
    train_idx = rng.permutation(np.flatnonzero(~test))
    test_idx = np.flatnonzero(test)
    return Dataset(x[train_idx], y[train_idx], x[test_idx], y[test_idx], 10,
                   "scikit-learn 8x8 digits")


def _digits_arrays():
    """``(images (1797, 8, 8), labels (1797,))``, read from the file scikit-learn ships
    (``sklearn/datasets/data/digits.csv.gz``, found without importing scikit-learn,
    whose ``sklearn.datasets`` takes 1-3 s to import); through ``load_digits`` where
    that file is not there."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("sklearn")
    if spec is None:  # pragma: no cover - depends on the environment
        raise ImportError("the digits data ships with scikit-learn: pip install "
                          "'jaxbp[demo]'")
    for root in spec.submodule_search_locations or ():
        path = os.path.join(root, "datasets", "data", "digits.csv.gz")
        if os.path.isfile(path):
            try:
                table = np.loadtxt(path, delimiter=",")
            except (OSError, EOFError, ValueError):  # damaged: scikit-learn's own way
                break
            if table.shape == (1797, 65):
                return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits  # another layout: the public way

    bunch = load_digits()
    return bunch.images, bunch.target


def load_npz(path) -> Dataset:
    """A user's dataset from an ``.npz`` holding ``x_train, y_train, x_test, y_test``.

    Images may be ``(n, h, w)`` (a channel axis is added) or ``(n, h, w, c)``; flat
    features ``(n, d)`` are kept. Pixels are brought to about [0, 1]: values already
    there, or with negatives (standardized features), are kept; 8-bit pixels (uint8, or
    a largest value in (128, 255]) are divided by 255; any other range (e.g. 0..16) is
    divided by the training set's largest value, with a note. Labels are integer class
    indices ``(n,)``, or one-hot ``(n, classes)`` (turned into indices); the classes
    are ``0 .. largest label``, with a note when some of them never occur.

    Args:
      path: the ``.npz`` file, e.g. MNIST saved with
        ``np.savez("mnist.npz", x_train=..., y_train=..., x_test=..., y_test=...)``.

    Returns:
      A :class:`Dataset`; its ``notes`` say what was rescaled or looks unusual.

    Raises:
      ValueError: the file is missing, is not an ``.npz`` archive (a ``.npy`` array,
        a text file), lacks an array, holds Python objects, NaN or infinite values, or
        arrays of the wrong shapes. TypeError: arrays of a non-numeric dtype.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"load_npz: path {path!r} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"load_npz: {path!r} is a folder, not an .npz file")
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(_NPY_MAGIC):
        raise ValueError(f"load_npz: {path!r} is a single .npy array, not an .npz archive "
                         f"of the four arrays; {_SAVE_HINT}")
    if not head.startswith(_ZIP_MAGIC):
        what = "it is empty" if not head else f"it starts with {head!r}"
        raise ValueError(f"load_npz: {path!r} is not an .npz archive ({what}); "
                         f"{_SAVE_HINT}")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in NPZ_KEYS if k not in data.files]
            if missing:
                raise ValueError(f"load_npz: {path!r} must hold arrays {list(NPZ_KEYS)}, "
                                 f"missing {missing} (found {sorted(data.files)})")
            arrays = {}
            for k in NPZ_KEYS:
                try:
                    arrays[k] = np.asarray(data[k])
                except ValueError as e:  # object arrays need pickle, refused
                    raise ValueError(f"load_npz: {k} in {path!r} holds Python objects "
                                     f"(dtype object), not numbers; save numeric "
                                     f"arrays") from e
    except zipfile.BadZipFile as e:
        raise ValueError(f"load_npz: {path!r} is not a readable .npz archive ({e}); "
                         f"{_SAVE_HINT}") from e
    xs = [_images(arrays[k], k, path) for k in ("x_train", "x_test")]
    ys = [_labels(arrays[k], k, path) for k in ("y_train", "y_test")]
    for x, y, part in zip(xs, ys, ("train", "test")):
        if len(x) != len(y):
            raise ValueError(f"load_npz: x_{part} and y_{part} must have the same number "
                             f"of rows, got {len(x)} and {len(y)}")
    if xs[0].shape[1:] != xs[1].shape[1:]:
        raise ValueError(f"load_npz: x_train and x_test must have the same example "
                         f"shape, got {tuple(xs[0].shape[1:])} and {tuple(xs[1].shape[1:])}")
    notes = []
    scale = _pixel_scale(arrays["x_train"], xs[0], notes)
    classes = _classes(ys, notes)
    return Dataset(xs[0] / scale, ys[0], xs[1] / scale, ys[1], classes,
                   os.path.basename(path), tuple(notes))


def _images(x, name, path):
    if x.ndim not in (2, 3, 4) or len(x) == 0:
        raise ValueError(f"load_npz: {name} in {path!r} must have shape (n, d), (n, h, w) "
                         f"or (n, h, w, c) with n > 0, got {tuple(x.shape)}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise TypeError(f"load_npz: {name} must be numeric, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.complexfloating):
        raise TypeError(f"load_npz: {name} must be real numbers, got dtype {x.dtype}")
    x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"load_npz: {name} in {path!r} holds {int(bad.sum())} NaN or "
                         f"infinite values (the first at index {first}, example "
                         f"{first[0]}); training on them gives a NaN loss: fill or drop "
                         f"those examples")
    return x[..., None] if x.ndim == 3 else x


def _pixel_scale(raw, x, notes):
    low, high = float(np.min(x)), float(np.max(x))
    if high <= 1.5 or low < 0:
        return np.float32(1.0)
    if raw.dtype == np.uint8 or 128 < high <= 255:
        return np.float32(255.0)
    notes.append(f"x_train's values run from {low:g} to {high:g}, neither [0, 1] nor "
                 f"8-bit pixels: x_train and x_test are divided by {high:g}, the largest "
                 f"value, to bring them to [0, 1]")
    return np.float32(high)


def _classes(ys, notes):
    labels = np.concatenate(ys)
    classes = max(int(labels.max(initial=0)) + 1, 2)
    if classes > MAX_CLASSES:
        raise ValueError(f"load_npz: the labels must be class indices below "
                         f"{MAX_CLASSES}, got a largest label of {classes - 1}")
    used = np.unique(labels)
    if len(used) < classes:
        unused = classes - len(used)
        notes.append(f"the labels run from {int(used.min())} to {int(used.max())}: the "
                     f"network gets {classes} outputs, one per class 0..{classes - 1}, "
                     f"and {unused} of those classes never occur (number the labels "
                     f"0..{len(used) - 1} for a smaller output layer)")
    return classes


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
