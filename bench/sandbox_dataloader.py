"""Training images/s of one reference CNN: archloop's tensor-resident TensorBatches against a
plain torchvision-style DataLoader loop (per-sample transforms: to float, normalize, random
horizontal flip), same net, same data, same batch size, in one run.

usage: .venv/bin/python bench/sandbox_dataloader.py [--images 8192] [--batch 16 64] [--device cpu|cuda]
       [--models none small reference]
       [--workers 0 2] [--repeats 3]
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
from archloop.runner.batches import TensorBatches  # noqa: E402
from archloop.runner.datasets import synthetic  # noqa: E402


class ReferenceCNN(nn.Module):
    """A small CIFAR CNN of the kind the paper's corpus holds (~0.3 M params)."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32)
        self.c2, self.b2 = nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64)
        self.c3, self.b3 = nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128)
        self.fc = nn.Linear(128, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)
        x = F.max_pool2d(F.relu(self.b2(self.c2(x))), 2)
        x = F.relu(self.b3(self.c3(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class SmallCNN(nn.Module):
    """The size of a typical first-cycle candidate (~3 k params): data handling dominates."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        return self.fc(F.adaptive_avg_pool2d(F.relu(self.c2(x)), 1).flatten(1))


MODELS = {"small": SmallCNN, "reference": ReferenceCNN, "none": None}


class UInt8Images(Dataset):
    """What a torchvision dataset gives a DataLoader: one image at a time, transformed per sample."""

    def __init__(self, images, labels, mean, std):
        self.images, self.labels = images, labels
        self.transform = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std), v2.RandomHorizontalFlip()])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.transform(self.images[index]), int(self.labels[index])


def epoch(model, batches, device) -> float:
    """Images/s of one pass; model None measures the data path alone."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) if model is not None else None
    if model is not None:
        model.train()
    started = time.perf_counter()
    seen = 0
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if model is not None:
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        seen += len(y)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - started)


def make(name: str, device):
    factory = MODELS[name]
    return factory().to(device) if factory is not None else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--batch", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["none", "small", "reference"], choices=sorted(MODELS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    arrays, spec = synthetic.build(args.images, 16)
    images_cpu = torch.from_numpy(arrays.train_x)
    labels_cpu = torch.from_numpy(arrays.train_y)
    images_dev, labels_dev = images_cpu.to(device), labels_cpu.to(device)
    rows = []
    for model_name in args.models:
        for batch in args.batch:
            runs: dict[str, list[float]] = {"tensor": []}
            for workers in args.workers:
                runs[f"dataloader_w{workers}"] = []
            for _ in range(args.repeats):  # interleaved, so load changes hit all variants alike
                torch.manual_seed(0)
                runs["tensor"].append(epoch(make(model_name, device), TensorBatches(images_dev, labels_dev, batch, spec.mean, spec.std), device))
                for workers in args.workers:
                    torch.manual_seed(0)
                    loader = DataLoader(UInt8Images(images_cpu, labels_cpu, spec.mean, spec.std), batch_size=batch, shuffle=True,
                                        num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=False)
                    runs[f"dataloader_w{workers}"].append(epoch(make(model_name, device), loader, device))
            medians = {name: round(statistics.median(values), 1) for name, values in runs.items()}
            best_loader = max(v for k, v in medians.items() if k.startswith("dataloader"))
            rows.append({"model": model_name, "batch": batch, "images_per_s": medians, "ratio_vs_best_dataloader": round(medians["tensor"] / best_loader, 2)})
    print(json.dumps({"device": str(device), "threads": args.threads, "images": args.images, "repeats": args.repeats,
                      "load_avg_1m": os.getloadavg()[0], "results": rows}, indent=2))


if __name__ == "__main__":
    main()
