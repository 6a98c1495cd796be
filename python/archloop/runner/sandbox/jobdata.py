"""What one job's sandbox sees of its dataset, and the secret that scores it.

validate gets the few training images its forward pass uses; train gets the training
split and the test images in a secret order drawn for this job alone. The order lives in
this process's memory and nowhere else: the permuted images go into an anonymous memfd,
and scoring undoes the order here. A program that knows (or has memorised) the test labels
in their published order therefore scores at chance, and the test labels themselves never
enter the sandbox. The files reach the candidate's fresh /data through descriptors (its
zygote copies them in), so one zygote serves every dataset.
"""

import fcntl
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from archloop.runner.datasets import cache

TRAIN_FILES = ("train_x.npy", "train_y.npy")
TRAIN_IMAGES = "train_x.npy"
TEST_IMAGES = "test_x.npy"


@dataclass
class JobData:
    """The job's /data: host files (read-only) and files made for this job (sealed memfds)."""

    files: dict[str, str]  # name -> host file
    memfds: dict[str, int] = field(default_factory=dict)  # name -> memfd with the content
    order: np.ndarray | None = None  # test image i in the sandbox is test image order[i]

    def descriptors(self) -> list[tuple[str, int, int]]:
        """(name, read-only descriptor, size) per file, by name; the caller closes the descriptors."""
        out = []
        for name, path in self.files.items():
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            out.append((name, fd, os.fstat(fd).st_size))
        for name, memfd in self.memfds.items():
            fd = os.dup(memfd)
            out.append((name, fd, os.fstat(fd).st_size))
        return sorted(out)

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


def prepare(kind: str, data_dir: Path, batch: int) -> JobData:
    """batch: the images a validate job forwards (all it is given of the training set)."""
    if kind == "validate":
        images = np.load(data_dir / TRAIN_IMAGES, mmap_mode="r")[:batch]
        return JobData(files={}, memfds={TRAIN_IMAGES: npy_memfd(images, "archloop-validate-batch")})
    test_x = np.load(data_dir / TEST_IMAGES, mmap_mode="r")
    order = secret_order(len(test_x))
    data = JobData(files={name: str(data_dir / name) for name in TRAIN_FILES}, order=order)
    data.memfds[TEST_IMAGES] = npy_memfd(test_x[order], "archloop-test-images")
    return data


def materialize(data: JobData, directory: Path) -> Path:
    """Without bubblewrap: the same view as a host directory (symlinks and files)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, host in data.files.items():
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
