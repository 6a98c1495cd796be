"""Process-wide environment for the LLM tools: offline hub access and archloop's paths."""

import os
from pathlib import Path

SERVED_NAME = "smollm2-135m-instruct"


def force_offline() -> None:
    """Make every Hugging Face library fail fast instead of reaching for a hub: the build and
    demo machines have no access to one, and weights must only come from local files."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[name] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    # Progress bars would interleave with the JSON lines our callers parse.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # the GGUF conversion uses tqdm directly
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def share_cores_politely() -> None:
    """Idle OpenMP threads sleep instead of spinning. Must run before torch is imported. On the
    shared 2-core machines, spinning threads fighting other processes made a batched generate
    7x slower (141 s vs 18.5 s for 8x32 tokens, 2 threads, load average 6); OMP_WAIT_POLICY set
    by the caller still wins."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def archloop_home() -> Path:
    default = Path(__file__).resolve().parents[3] / ".archloop"
    return Path(os.environ.get("ARCHLOOP_HOME", default))


def default_model_dir() -> Path:
    return archloop_home() / "models" / SERVED_NAME
