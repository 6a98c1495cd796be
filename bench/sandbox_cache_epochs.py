"""What one epoch does not stop (issue 20): a program that copies the batches `train_data`
yields and trains three passes over its copy, against its twin, in-process on Fashion-MNIST
(12,000 training images, batch 64, one thread). Bounded only by the time limit.

    PYTHONPATH=python .venv/bin/python bench/sandbox_cache_epochs.py
"""

import base64
import tempfile

import numpy as np
import torch

from archloop.runner import train
from archloop.runner.datasets import cache, registry
from archloop.runner.protocol import ContractSection, DatasetSection, InnerRequest, TrainingSection
from tests.runner.corpus import VALID

LOOP = "        for inputs, labels in train_data:\n"
CACHED = ("        cached = [(x.clone(), y.clone()) for x, y in train_data]\n"
          "        for inputs, labels in [batch for _ in range(3) for batch in cached]:\n")


def main() -> None:
    torch.set_num_threads(1)
    directory = registry.prepare(DatasetSection(name="fashion-mnist"))
    spec, labels = cache.read_spec(directory), cache.read_test_labels(directory)
    for name in ("simple", "bn_dropout_adaptive"):
        for variant, code in (("twin", VALID[name]), ("three passes over a copy", VALID[name].replace(LOOP, CACHED, 1))):
            request = InnerRequest(kind="train", code=code, spec=spec, data_dir=str(directory), contract=ContractSection(),
                                   training=TrainingSection(threads=1, batch_size=64, max_train_images=12_000,
                                                            time_limit_s=3600), audit_hook=False, job_dir=tempfile.mkdtemp())
            result = train.run(request, lambda *a, **k: None)
            predictions = np.frombuffer(base64.b64decode(result.predictions_b64), dtype=np.uint8)
            print(f"{name:20s} {variant:26s} accuracy {float((predictions == labels).mean()):.4f}  "
                  f"learn {result.timings['trainS']:.1f} s", flush=True)


if __name__ == "__main__":
    main()
