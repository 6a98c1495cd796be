"""What one job's sandbox sees of its dataset, and the secret that scores it.

validate gets the training images only (it forwards one batch); train gets the training
split and the test images in a secret order drawn for this job alone. The order lives in
this process's memory and nowhere else: the permuted images go into an anonymous memfd
handed to the candidate's process (read-only: sealed), and scoring undoes the order here. A program that
knows (or has memorised) the test labels in their published order therefore scores at
chance, and the test labels themselves never enter the sandbox.
"""
from __future__ import annotations

import fcntl
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..datasets import cache

VALIDATE_FILES = ("train_x.npy",)
TRAIN_FILES = ("train_x.npy", "train_y.npy")
TEST_IMAGES = "test_x.npy"


@dataclass
class JobData:
    binds: dict[str, str]  # name inside the data dir -> host file, bound read-only
    memfds: dict[str, int] = field(default_factory=dict)  # name -> memfd with the content
    order: Optional[np.ndarray] = None  # test image i in the sandbox is test image order[i]

    def close(self) -> None:
        for fd in self.memfds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self.memfds.clear()


def secret_order(count: int) -> np.ndarray:
    return np.random.default_rng(secrets.randbits(128)).permutation(count)


SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def npy_memfd(array: np.ndarray, name: str) -> int:
    """An anonymous file with the array, sealed: whoever gets the descriptor can only read it."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    with os.fdopen(os.dup(fd), "wb") as handle:
        np.lib.format.write_array(handle, np.ascontiguousarray(array), allow_pickle=False)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def binds(kind: str, data_dir: Path) -> dict[str, str]:
    """The dataset files bound into every sandbox of this kind (not the test images)."""
    return {name: str(data_dir / name) for name in (VALIDATE_FILES if kind == "validate" else TRAIN_FILES)}


def prepare(kind: str, data_dir: Path) -> JobData:
    if kind == "validate":
        return JobData(binds=binds(kind, data_dir))
    test_x = np.load(data_dir / TEST_IMAGES, mmap_mode="r")
    order = secret_order(len(test_x))
    data = JobData(binds=binds(kind, data_dir), order=order)
    data.memfds[TEST_IMAGES] = npy_memfd(test_x[order], "archloop-test-images")
    return data


def materialize(data: JobData, directory: Path) -> Path:
    """Without bubblewrap: the same view as a host directory (symlinks and files)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, host in data.binds.items():
        (directory / name).symlink_to(host)
    for name, fd in data.memfds.items():
        with open(directory / name, "wb") as out, os.fdopen(os.dup(fd), "rb") as source:
            os.lseek(fd, 0, os.SEEK_SET)
            out.write(source.read())
        os.lseek(fd, 0, os.SEEK_SET)
    return directory


def labels_in_job_order(data_dir: Path, order: np.ndarray) -> np.ndarray:
    """The test labels in the order this job's sandbox saw the images."""
    return cache.read_test_labels(data_dir)[order]
