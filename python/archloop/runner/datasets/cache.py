"""The on-disk cache: train_x/train_y/test_x/test_y .npy (uint8/int64) + spec.json.

Written to a temporary sibling directory and renamed into place, so concurrent workers
preparing the same dataset never see a half-written cache. Nothing here is mounted into
the sandbox as a directory: the job binds single files (the training split, and the test
images in a secret per-job order), never test_y.npy or the machine secret.
"""

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archloop.runner.protocol import DatasetSpec

FILES = ("train_x.npy", "train_y.npy", "test_x.npy", "test_y.npy")
PRIVATE_FILES = ("test_y.npy",)  # 0600: only the trusted side reads them
SECRET_FILE = ".machine-secret"


def archloop_home() -> Path:
    default = Path(__file__).resolve().parents[4] / ".archloop"
    return Path(os.environ.get("ARCHLOOP_HOME", default)).resolve()


def datasets_root() -> Path:
    return Path(os.environ.get("ARCHLOOP_DATASETS", archloop_home() / "datasets")).resolve()


@dataclass(frozen=True)
class Arrays:
    train_x: np.ndarray  # (N, C, H, W) uint8
    train_y: np.ndarray  # (N,) int64
    test_x: np.ndarray
    test_y: np.ndarray


def is_complete(directory: Path) -> bool:
    return all((directory / name).is_file() for name in (*FILES, "spec.json"))


def write(directory: Path, arrays: Arrays, spec: DatasetSpec) -> None:
    directory.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(directory.parent, 0o755)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        for name, array in zip(FILES, (arrays.train_x, arrays.train_y, arrays.test_x, arrays.test_y)):
            np.save(staging / name, np.ascontiguousarray(array))
        (staging / "spec.json").write_text(spec.to_json())
        for path in staging.iterdir():
            os.chmod(path, 0o600 if path.name in PRIVATE_FILES else 0o644)
        os.chmod(staging, 0o755)
        try:
            os.rename(staging, directory)
        except OSError:
            if not is_complete(directory):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_spec(directory: Path) -> DatasetSpec:
    return DatasetSpec.model_validate_json((directory / "spec.json").read_text())


def machine_secret(root: Path | None = None) -> int:
    """A random 128-bit number made once per dataset root (0600, never mounted into a
    sandbox): the seed of everything in the synthetic dataset that must not be regenerable
    from the public code. Created atomically, so concurrent workers agree on it."""
    root = root or datasets_root()
    path = root / SECRET_FILE
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        fd, staging = tempfile.mkstemp(prefix=".secret-", dir=root)
        try:
            os.write(fd, secrets.token_hex(16).encode())
            os.close(fd)
            os.link(staging, path)  # fails if another process won the race: keep theirs
        except FileExistsError:
            pass
        finally:
            os.unlink(staging)
    return int(path.read_text().strip(), 16)


def read_test_labels(directory: Path) -> np.ndarray:
    return np.load(directory / "test_y.npy", allow_pickle=False)


def channel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean/std of uint8 images, in [0, 1] units (chunked: CIFAR is 150 MB)."""
    channels = images.shape[1]
    total = np.zeros(channels)
    total_sq = np.zeros(channels)
    count = 0
    for start in range(0, len(images), 5000):
        chunk = images[start : start + 5000].astype(np.float64) / 255.0
        total += chunk.sum(axis=(0, 2, 3))
        total_sq += (chunk**2).sum(axis=(0, 2, 3))
        count += chunk.shape[0] * chunk.shape[2] * chunk.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 1e-12))
    return [round(float(m), 6) for m in mean], [round(float(s), 6) for s in std]
