"""CIFAR-10 from the standard `cifar-10-batches-py` (pickled dicts) or `cifar-10-batches-bin`
(3073-byte records) layout; downloaded and checked against the published MD5 when missing.
"""

import hashlib
import pickle
import tarfile
import urllib.request
from pathlib import Path

import numpy as np

from archloop.runner.datasets.cache import Arrays, channel_stats
from archloop.runner.datasets.fashion_mnist import DatasetMissing
from archloop.runner.protocol import DatasetSpec

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
_RECORD = 1 + 3 * 32 * 32


class _OnlyArrays(pickle.Unpickler):
    """The batches are plain dicts of bytes/lists/ndarrays; refuse any other global."""

    def find_class(self, module: str, name: str):
        if (module, name) in {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                              ("numpy._core.multiarray", "_reconstruct"), ("_codecs", "encode")}:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in CIFAR-10 batch")


def _read_py_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as handle:
        batch = _OnlyArrays(handle, encoding="bytes").load()
    data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return data, np.asarray(batch[b"labels"], dtype=np.int64)


def _read_bin_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % _RECORD:
        raise ValueError(f"{path}: size {raw.size} is not a multiple of {_RECORD}")
    records = raw.reshape(-1, _RECORD)
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), records[:, 0].astype(np.int64)


def _layout(root: Path) -> tuple[Path, str, str] | None:
    """(directory, layout kind, file suffix) of the first layout found under root."""
    for directory in (root / "cifar-10-batches-py", root):
        if all((directory / name).is_file() for name in (*TRAIN_BATCHES, "test_batch")):
            return directory, "py", ""
    for directory in (root / "cifar-10-batches-bin", root):
        if (directory / "test_batch.bin").is_file():
            return directory, "bin", ".bin"
    return None


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(root: Path, url: str | None = None, md5: str | None = None, timeout_s: float = 60) -> None:
    """Fetches and unpacks the python-layout archive; refuses it when the checksum differs."""
    url, md5 = url or URL, md5 or MD5
    root.mkdir(parents=True, exist_ok=True)
    archive = root / "cifar-10-python.tar.gz"
    partial = archive.with_suffix(".part")
    with urllib.request.urlopen(url, timeout=timeout_s) as response, open(partial, "wb") as out:
        for block in iter(lambda: response.read(1 << 20), b""):
            out.write(block)
    actual = md5sum(partial)
    if actual != md5:
        partial.unlink()
        raise ValueError(f"CIFAR-10 download from {url}: md5 {actual}, expected {md5}")
    partial.rename(archive)
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")


def load(root: Path, allow_download: bool = True) -> tuple[Arrays, DatasetSpec]:
    found = _layout(root)
    if found is None and allow_download:
        try:
            download(root)
        except (OSError, ValueError) as error:  # URLError is an OSError
            raise DatasetMissing(
                f"CIFAR-10 not found under {root} and the download failed ({error}); "
                "offline: copy cifar-10-batches-py or cifar-10-batches-bin there"
            ) from error
        found = _layout(root)
    if found is None:
        raise DatasetMissing(
            f"CIFAR-10 not found under {root} (expected cifar-10-batches-py/ or cifar-10-batches-bin/); "
            "downloads are disabled (dataset.download=false)"
        )
    directory, kind, suffix = found
    reader = _read_py_batch if kind == "py" else _read_bin_batch
    names = TRAIN_BATCHES if kind == "py" else [f"data_batch_{i}" for i in range(1, 6)]
    parts = [reader(directory / f"{name}{suffix}") for name in names if (directory / f"{name}{suffix}").is_file()]
    if not parts:
        raise DatasetMissing(f"CIFAR-10 under {directory}: no training batches")
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    test_x, test_y = reader(directory / f"test_batch{suffix}")
    mean, std = channel_stats(train_x)
    spec = DatasetSpec(
        name="cifar10", input_shape=[3, 32, 32], classes=10, class_names=CLASS_NAMES, mean=mean, std=std,
        train_size=len(train_x), test_size=len(test_x), flip=True, source=f"{directory} ({kind})",
    )
    return Arrays(train_x, train_y, test_x, test_y), spec
