"""A small learnable dataset for tests and benchmarks (CIFAR-shaped: 3x32x32, 10 classes).

Each class is a colour plus a smooth, left-right symmetric pattern (so random flips keep labels);
samples add per-pixel noise and a random brightness shift. A small CNN learns it well
above chance in one epoch; a constant predictor scores 10 %.

The ten colours are public (a fixed palette, so the normalization stats the prompt states
hold everywhere); which class gets which colour, the patterns and every sample come from
the machine's secret seed (cache.machine_secret), so the labels cannot be regenerated from
this code. The generator never enters the sandbox either.
"""

import numpy as np

from archloop.runner.datasets.cache import Arrays, channel_stats
from archloop.runner.protocol import DatasetSpec

CLASSES = 10
SHAPE = (3, 32, 32)
PALETTE_SEED = 0


def _prototypes(rng: np.random.Generator) -> np.ndarray:
    # A colour per class (survives global pooling) plus a coarse spatial pattern.
    palette = np.random.default_rng(PALETTE_SEED).uniform(40, 215, size=(CLASSES, SHAPE[0], 1, 1))
    colour = palette[rng.permutation(CLASSES)]
    coarse = rng.uniform(-60, 60, size=(CLASSES, SHAPE[0], 4, 4))
    pattern = coarse.repeat(SHAPE[1] // 4, axis=2).repeat(SHAPE[2] // 4, axis=3)
    return colour + (pattern + pattern[..., ::-1]) / 2  # mirror-symmetric


def _samples(prototypes: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, CLASSES, size=count)
    noise = rng.normal(0, 40, size=(count, *SHAPE))
    brightness = rng.normal(0, 20, size=(count, 1, 1, 1))
    images = np.clip(prototypes[labels] + noise + brightness, 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def build(train_size: int, test_size: int, seed: int) -> tuple[Arrays, DatasetSpec]:
    rng = np.random.default_rng(seed)
    prototypes = _prototypes(rng)
    train_x, train_y = _samples(prototypes, train_size, rng)
    test_x, test_y = _samples(prototypes, test_size, rng)
    mean, std = channel_stats(train_x)
    spec = DatasetSpec(
        name="synthetic", input_shape=list(SHAPE), classes=CLASSES,
        class_names=[f"pattern-{i}" for i in range(CLASSES)], mean=mean, std=std,
        train_size=train_size, test_size=test_size, flip=True, source="generated (secret per-machine seed)",
    )
    return Arrays(train_x, train_y, test_x, test_y), spec
