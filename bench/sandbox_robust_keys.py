"""What the test-image perturbation does not stop (issue 20): a program that recognises the
public test images by a key that tolerates noise. Keys are quantised block means of each
image; for every amplitude, how often the key of the perturbed image equals the public one,
and how many images a table of (key -> majority public label) answers right on its own.

    PYTHONPATH=python .venv/bin/python bench/sandbox_robust_keys.py
"""

import numpy as np

from archloop.runner.datasets import cache, registry
from archloop.runner.protocol import DatasetSection
from archloop.runner.sandbox.jobdata import perturbed


def keys(images: np.ndarray, blocks: int, step: int) -> list[bytes]:
    n, h, _ = images.shape
    size = h // blocks
    means = images[:, :size * blocks, :size * blocks].reshape(n, blocks, size, blocks, size).mean(axis=(2, 4))
    return [row.tobytes() for row in np.floor(means / step).astype(np.int64)]


def main() -> None:
    directory = registry.prepare(DatasetSection(name="fashion-mnist"))
    public = np.load(directory / "test_x.npy")
    labels = cache.read_test_labels(directory)
    rng = np.random.default_rng(1)
    for amplitude in (0, 4, 8):
        seen = perturbed(public, amplitude, rng)
        for blocks, step in ((4, 32), (4, 64), (2, 64)):
            clean, noisy = keys(public[:, 0].astype(np.float32), blocks, step), keys(seen[:, 0].astype(np.float32), blocks, step)
            table: dict[bytes, list[int]] = {}
            for key, label in zip(clean, labels):
                table.setdefault(key, []).append(int(label))
            answer = {key: int(np.bincount(values, minlength=10).argmax()) for key, values in table.items()}
            unchanged = np.mean([a == b for a, b in zip(clean, noisy)])
            right = np.mean([answer.get(key) == label for key, label in zip(noisy, labels)])
            print(f"amplitude {amplitude}: {blocks}x{blocks} block means, step {step}: key unchanged {unchanged:.3f}, "
                  f"distinct keys {len(table)}, right from the table alone {right:.3f}")


if __name__ == "__main__":
    main()
