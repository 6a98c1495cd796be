"""sandbox/cgroup.py on stand-in hierarchies (plain directories laid out as cgroupfs), for
the file-level logic of both versions; the real kernel's is in test_resources.py."""

import os
from pathlib import Path

import pytest

from archloop.runner.sandbox import cgroup

CAPS = cgroup.Caps(memory_bytes=3 << 30, pids=64, cpu_cores=2.0)


@pytest.fixture(autouse=True)
def procs_files(monkeypatch):
    """cgroupfs makes cgroup.procs with each group; a stand-in directory does not."""
    real = os.open

    def opening(path, flags, *args):
        extra = os.O_CREAT if str(path).endswith("cgroup.procs") else 0
        return real(path, flags | extra, 0o644) if extra else real(path, flags, *args)

    monkeypatch.setattr(os, "open", opening)


def _files(directory: Path, **files: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name.replace("__", ".")).write_text(text)


def _proc(tmp_path: Path, text: str) -> str:
    path = tmp_path / "proc-self-cgroup"
    path.write_text(text)
    return str(path)


def test_v2_groups_below_a_delegated_parent(tmp_path):
    root = tmp_path / "fs"
    _files(root, cgroup__controllers="cpuset cpu io memory pids")
    _files(root / "workers", cgroup__controllers="cpu memory pids", cgroup__subtree_control="")
    hierarchy = cgroup.detect({"ARCHLOOP_CGROUP_PARENT": "/workers"}, root, 42, _proc(tmp_path, "0::/user.slice/x\n"))
    assert hierarchy.version == "v2" and hierarchy.controllers == ("memory", "pids", "cpu")
    assert (root / "workers/cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    group = hierarchy.create(CAPS)
    job = root / "workers/archloop/serve-42/job-1"
    assert group.dirs == {"": job}
    assert (job / "memory.max").read_text() == str(3 << 30)
    assert (job / "pids.max").read_text() == "64"
    assert (job / "cpu.max").read_text() == "200000 100000"
    assert len(group.procs_fds()) == 1
    (job / "memory.events").write_text("low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\n")
    (job / "pids.events").write_text("max 5\n")
    (job / "memory.peak").write_text("123456\n")
    assert group.usage() == cgroup.Usage(oom_kills=2, pids_refused=5, peak_bytes=123456)
    group.remove()


def test_v1_groups_per_controller_below_the_own_cgroup(tmp_path):
    root = tmp_path / "fs"
    for controller in ("memory", "pids", "cpu"):
        _files(root / controller, cgroup__procs="")
    (root / "memory/process_api/abc").mkdir(parents=True)
    own = "4:memory:/process_api/abc\n8:pids:/\n1:cpu,cpuacct:/\n0::/\n"
    hierarchy = cgroup.detect({}, root, 7, _proc(tmp_path, own))
    assert hierarchy.version == "v1" and hierarchy.controllers == ("memory", "pids", "cpu")
    group = hierarchy.create(CAPS)
    assert group.dirs["memory"] == root / "memory/process_api/abc/archloop/serve-7/job-1"
    assert group.dirs["pids"] == root / "pids/archloop/serve-7/job-1"
    assert (group.dirs["memory"] / "memory.limit_in_bytes").read_text() == str(3 << 30)
    assert (group.dirs["pids"] / "pids.max").read_text() == "64"
    assert (group.dirs["cpu"] / "cpu.cfs_quota_us").read_text() == "200000"
    assert len(group.procs_fds()) == 3
    (group.dirs["memory"] / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    (group.dirs["memory"] / "memory.max_usage_in_bytes").write_text("99\n")
    assert group.usage() == cgroup.Usage(oom_kills=3, pids_refused=0, peak_bytes=99)
    group.remove()


def test_groups_of_a_dead_serve_are_swept(tmp_path):
    root = tmp_path / "fs"
    for controller in ("memory", "pids"):
        _files(root / controller, cgroup__procs="")
    stale = root / "pids/archloop/serve-999999999/job-3"
    stale.mkdir(parents=True)
    cgroup.detect({}, root, 8, _proc(tmp_path, "0::/\n"))
    assert not stale.exists() and not stale.parent.exists()


@pytest.mark.parametrize("env, layout, why", [
    ({"ARCHLOOP_CGROUP": "off"}, {}, "turned off"),
    ({}, {"unified/cgroup__controllers": "hugetlb"}, "offers hugetlb, not memory and pids"),
    ({}, {"memory/cgroup__procs": ""}, "no cgroup v1 pids controller"),
])
def test_unavailable_says_why(tmp_path, env, layout, why):
    root = tmp_path / "fs"
    root.mkdir()
    for name, text in layout.items():
        path = root / name.replace("__", ".")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    with pytest.raises(cgroup.Unavailable, match=why):
        cgroup.detect(env, root, 9, _proc(tmp_path, "0::/\n"))
