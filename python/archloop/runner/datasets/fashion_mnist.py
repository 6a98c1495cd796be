"""Fashion-MNIST from IDX files (Debian's dataset-fashion-mnist: /usr/share/datasets/fashion-mnist).

The IDX reader is a few lines of numpy (torchvision's needs torch, which the launcher
does not import).
"""

import gzip
from pathlib import Path

import numpy as np

from archloop.runner.datasets.cache import Arrays, channel_stats
from archloop.runner.protocol import DatasetSpec

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
_IDX_DTYPES = {0x08: np.uint8}


class DatasetMissing(Exception):
    """The dataset's files are not where the config says (an infrastructure error)."""


def read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file")
    dtype = _IDX_DTYPES.get(data[2])
    if dtype is None:
        raise ValueError(f"{path}: unsupported IDX element type 0x{data[2]:02x}")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {dims} elements, found {body.size}")
    return body.reshape(dims)


def _find(directory: Path, stem: str) -> Path:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    raise DatasetMissing(
        f"Fashion-MNIST file {stem}[.gz] not found in {directory} "
        "(install Debian's dataset-fashion-mnist or set dataset.path)"
    )


def load(directory: Path | None = None) -> tuple[Arrays, DatasetSpec]:
    directory = directory or DEFAULT_DIR
    train_x = read_idx(_find(directory, "train-images-idx3-ubyte"))[:, None]
    train_y = read_idx(_find(directory, "train-labels-idx1-ubyte")).astype(np.int64)
    test_x = read_idx(_find(directory, "t10k-images-idx3-ubyte"))[:, None]
    test_y = read_idx(_find(directory, "t10k-labels-idx1-ubyte")).astype(np.int64)
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise ValueError(f"{directory}: image and label counts differ")
    mean, std = channel_stats(train_x)
    spec = DatasetSpec(
        name="fashion-mnist", input_shape=list(train_x.shape[1:]), classes=10, class_names=CLASS_NAMES,
        mean=mean, std=std, train_size=len(train_x), test_size=len(test_x), flip=True, source=str(directory),
    )
    return Arrays(train_x, train_y, test_x, test_y), spec
