"""NaN/inf loss detection without a device sync per step.

The model's own criterion (LEMUR nets keep it in `self.criteria`, a tuple, or
`self.criterion`) is wrapped after train_setup; each call adds to on-device counters,
which the training loop reads only at its progress checkpoints.
"""

from typing import Any

import torch

CRITERION_ATTRS = ("criteria", "criterion", "loss_fn", "loss_func", "criterions")


class MonitoredLoss(torch.nn.Module):
    def __init__(self, inner: Any, stats: "LossTracker"):
        super().__init__()
        self.inner = inner
        self.stats = stats

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        loss = self.inner(*args, **kwargs)
        if isinstance(loss, torch.Tensor):
            self.stats.record(loss)
        return loss


class LossTracker:
    def __init__(self) -> None:
        self.steps = 0
        self.first: float | None = None
        self.last: torch.Tensor | None = None
        self.total: torch.Tensor | None = None
        self.non_finite: torch.Tensor | None = None

    def record(self, loss: torch.Tensor) -> None:
        value = loss.detach().float().mean()
        if self.first is None:
            self.first = float(value)
        bad = (~torch.isfinite(value)).to(torch.int64)
        self.total = value if self.total is None else self.total + torch.nan_to_num(value)
        self.non_finite = bad if self.non_finite is None else self.non_finite + bad
        self.last = value
        self.steps += 1

    def bad_steps(self) -> int:
        return 0 if self.non_finite is None else int(self.non_finite)

    def summary(self) -> dict:
        mean = float(self.total) / self.steps if self.steps and self.total is not None else None
        last = float(self.last) if self.last is not None else None
        return {"steps": self.steps, "first": self.first, "last": last, "mean": mean, "non_finite": self.bad_steps()}


def _wrap(value: Any, tracker: LossTracker) -> Any:
    if isinstance(value, MonitoredLoss):
        return value
    if isinstance(value, (tuple, list)):
        return type(value)(_wrap(v, tracker) for v in value)
    if callable(value) and not isinstance(value, torch.optim.Optimizer):
        return MonitoredLoss(value, tracker)
    return value


def attach(model: torch.nn.Module, tracker: LossTracker) -> bool:
    """Wraps the model's criterion in place; False when it keeps none we recognise."""
    attached = False
    for name in CRITERION_ATTRS:
        value = getattr(model, name, None)
        if value is None:
            continue
        setattr(model, name, _wrap(value, tracker))
        attached = True
    return attached


def parameters_finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def to_float(value: float | None) -> float | None:
    return None if value is None or value != value or value in (float("inf"), float("-inf")) else value
