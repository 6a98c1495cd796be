"""Finding the checkpoint to resume from. Trainer writes trainer_state.json last, so a
checkpoint without it was cut off mid-save (a kill) and is dropped; one with it that cannot be
read is corrupt, which is reported rather than silently trained over."""

import json
import logging
import re
import shutil
from pathlib import Path

from archloop.llm.jsonlog import log
from archloop.lora.job import JobError

logger = logging.getLogger("archloop.lora")
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def checkpoints_by_step(root: Path) -> list[tuple[int, Path]]:
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := CHECKPOINT.match(p.name))]
    return sorted(found)


def verify(checkpoint: Path) -> None:
    """Read every file resuming needs; raise corrupt-checkpoint naming the first bad one."""
    import torch
    from safetensors.torch import load_file

    def corrupt(name: str, why: Exception | str) -> JobError:
        return JobError("corrupt-checkpoint", f"checkpoint {checkpoint} is unreadable ({name}: {why}); "
                        "delete it to resume from an earlier one", checkpoint=str(checkpoint))

    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        int(state["global_step"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise corrupt("trainer_state.json", e) from None
    for name in ("adapter_model.safetensors",):
        try:
            load_file(checkpoint / name)
        except Exception as e:  # safetensors raises several types for damaged files
            raise corrupt(name, e) from None
    for name in ("optimizer.pt", "scheduler.pt"):
        try:
            torch.load(checkpoint / name, map_location="cpu", weights_only=True)
        except Exception as e:  # torch.load raises pickle/zip/runtime errors for damaged files
            raise corrupt(name, e) from None


def resumable_checkpoint(root: Path) -> Path | None:
    """The newest complete checkpoint under `root` (verified), dropping newer partial ones."""
    for _, path in reversed(checkpoints_by_step(root)):
        if not (path / "trainer_state.json").exists():
            log(logger, logging.WARNING, "dropping checkpoint cut off mid-save", checkpoint=str(path))
            shutil.rmtree(path)
            continue
        verify(path)
        return path
    return None
