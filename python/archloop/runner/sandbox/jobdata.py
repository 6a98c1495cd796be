"""What one job's sandbox sees of its dataset, and the secret that scores it.

validate gets the few training images its forward pass uses; train gets the training
images the run gives (`maxTrainImages`, else the split) in /data, and, only once `learn`
has returned (handover.py), the test images in a secret order drawn for this job alone,
each pixel perturbed by a per-job random amount of at most `testNoise` levels. The order
lives in this process's memory and nowhere else, and scoring undoes it here: a program that
knows (or has memorised) the test labels in their published order scores at chance, and
the test labels themselves never enter the sandbox. The perturbation leaves no test image
byte-identical to its public copy, so a table of public images (or of their hashes) and
their public labels matches none of them. The files reach the candidate's fresh /data
through descriptors (its zygote copies them in), so one zygote serves every dataset.
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
    test_images: np.ndarray | None = None  # in that order, perturbed: handed over after learn

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


SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def npy_memfd(array: np.ndarray, name: str) -> int:
    """An anonymous file with the array, sealed: whoever gets the descriptor can only read it."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    with os.fdopen(os.dup(fd), "wb") as handle:
        np.lib.format.write_array(handle, np.ascontiguousarray(array), allow_pickle=False)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def secret_order(count: int) -> np.ndarray:
    return np.random.default_rng(secrets.randbits(128)).permutation(count)


def perturbed(images: np.ndarray, amplitude: int, rng: np.random.Generator) -> np.ndarray:
    """Every pixel moved by an independent uniform integer in [-amplitude, amplitude], clipped."""
    if amplitude == 0:
        return np.ascontiguousarray(images)
    noise = rng.integers(-amplitude, amplitude + 1, size=images.shape, dtype=np.int16)
    return np.clip(images.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def prepare(kind: str, data_dir: Path, batch: int, train_images: int = 0, test_noise: int = 0) -> JobData:
    """batch: the images a validate job forwards (all it is given of the training set);
    train_images: how many a train job is given (0: the whole split); test_noise: the
    perturbation's amplitude in intensity levels."""
    if kind == "validate":
        images = np.load(data_dir / TRAIN_IMAGES, mmap_mode="r")[:batch]
        return JobData(files={}, memfds={TRAIN_IMAGES: npy_memfd(images, "archloop-validate-batch")})
    data = JobData(files={name: str(data_dir / name) for name in TRAIN_FILES})
    if train_images:  # only what the run gives: a program cannot train on the rest of the split
        data.files = {}
        for name in TRAIN_FILES:
            data.memfds[name] = npy_memfd(np.load(data_dir / name, mmap_mode="r")[:train_images], f"archloop-{name}")
    test_x = np.load(data_dir / TEST_IMAGES, mmap_mode="r")
    data.order = secret_order(len(test_x))
    data.test_images = perturbed(test_x[data.order], test_noise, np.random.default_rng(secrets.randbits(128)))
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
