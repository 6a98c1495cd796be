"""Dataset name + config -> a complete cache directory (built on first use)."""

from pathlib import Path

from archloop.runner.datasets import cache, cifar10, fashion_mnist, synthetic
from archloop.runner.protocol import DatasetSection, DatasetSpec


def cache_key(section: DatasetSection) -> str:
    if section.name == "synthetic":
        # "secret": generated from the machine secret (caches from the old public seed are never reused)
        return f"synthetic-secret-{section.synthetic_train_size}-{section.synthetic_test_size}"
    return section.name


def _build(section: DatasetSection):
    if section.name == "synthetic":
        return synthetic.build(section.synthetic_train_size, section.synthetic_test_size, seed=cache.machine_secret())
    if section.name == "fashion-mnist":
        return fashion_mnist.load(Path(section.path) if section.path else None)
    root = Path(section.path) if section.path else cache.datasets_root() / "raw" / "cifar10"
    return cifar10.load(root, allow_download=section.download)


def prepare(section: DatasetSection) -> Path:
    """The cache directory for this dataset, reading/generating it the first time."""
    directory = cache.datasets_root() / cache_key(section)
    if not cache.is_complete(directory):
        arrays, spec = _build(section)
        cache.write(directory, arrays, spec)
    return directory


def as_seen(spec: DatasetSpec, resize: int | None) -> DatasetSpec:
    """The spec at the shape the network sees: the cache keeps the native one, and a resized
    run (dataset.resize) gets (C, resize, resize) in input_shape and so in Net's in_shape."""
    if resize is None:
        return spec
    return spec.model_copy(update={"input_shape": [spec.input_shape[0], resize, resize], "resize": resize})


def spec_of(section: DatasetSection) -> DatasetSpec:
    return as_seen(cache.read_spec(prepare(section)), section.resize)
