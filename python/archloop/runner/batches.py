"""archloop's training iterable: the whole split lives in one uint8 tensor on the device.

Per batch it gathers indices, converts to float, normalizes and flips with tensor ops:
no DataLoader, no worker processes, no per-sample Python. Iterating it again reshuffles,
unless it is made `once`: the training epoch's iterable yields its batches to the first
iteration only, and every later one ends at once (counted in `extra_passes`). One epoch is
the paper's protocol; a program that loops over its data twice trains one epoch, as an
honest one does, rather than failing (a classified failure would also discard programs
that merely wrap their loop in `for epoch in range(...)`).
With `resize` (nn-gpt's protocol, dataset.resize) each batch is then resized on the device,
so the split stays at its native size in memory.
"""

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F


def resized(batch: torch.Tensor, size: int | None) -> torch.Tensor:
    """Bilinear to size×size (None: unchanged). Normalising and flipping commute with it, so
    doing them first equals torchvision's Resize-then-Normalize; antialias matches PIL's
    Resize when shrinking and changes nothing when enlarging."""
    if size is None or tuple(batch.shape[-2:]) == (size, size):
        return batch
    return F.interpolate(batch, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


class TensorBatches:
    def __init__(
        self,
        images: torch.Tensor,  # (N, C, H, W) uint8, already on the target device
        labels: torch.Tensor,  # (N,) int64
        batch_size: int,
        mean: list[float],
        std: list[float],
        *,
        shuffle: bool = True,
        flip: bool = True,
        seed: int = 0,
        channels_last: bool = False,
        on_batch: Callable[[int], None] | None = None,
        resize: int | None = None,
        once: bool = False,
    ):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError("images must be a (N, C, H, W) uint8 tensor")
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        device = images.device
        std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        # x/255 - mean) / std  ==  x * scale + shift, one fused multiply-add per batch
        self.scale = 1.0 / (255.0 * std_t)
        self.shift = -mean_t / std_t
        self.shuffle, self.flip = shuffle, flip
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.channels_last = channels_last
        self.on_batch = on_batch
        self.resize = resize
        self.once, self.passes = once, 0

    def __len__(self) -> int:
        return (len(self.images) + self.batch_size - 1) // self.batch_size

    def normalize(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, batch.float(), self.scale)

    @property
    def extra_passes(self) -> int:
        return max(0, self.passes - 1)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.passes += 1
        if self.once and self.passes > 1:
            return
        count = len(self.images)
        device = self.images.device
        order = torch.randperm(count, generator=self.generator) if self.shuffle else torch.arange(count)
        order = order.to(device)
        flips = (torch.rand(count, generator=self.generator) < 0.5).to(device) if self.flip else None
        seen = 0
        for start in range(0, count, self.batch_size):
            index = order[start : start + self.batch_size]
            batch = self.normalize(self.images.index_select(0, index))
            if flips is not None:
                mask = flips[start : start + self.batch_size].view(-1, 1, 1, 1)
                batch = torch.where(mask, batch.flip(3), batch)
            batch = resized(batch, self.resize)
            if self.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            seen += len(index)
            if self.on_batch is not None:
                self.on_batch(seen)
            yield batch, self.labels.index_select(0, index)
