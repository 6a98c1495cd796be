"""Caps on a whole sandbox, every process in it however it forks: memory, processes and
CPU, with one cgroup per job, made and read by the trusted side (the `serve` process).

RLIMIT_AS and RLIMIT_NPROC count per process and per uid: children multiply a program's
memory, and GPU jobs run without RLIMIT_AS. A cgroup counts the whole tree, and its
limits live in the kernel, out of the candidate's reach (no cgroupfs inside the sandbox,
no capability to move itself out).

Both hierarchies: v2 (one tree; `memory.max`, `pids.max`, `cpu.max`, equal `cpu.weight`)
and v1 (a mount per controller; `memory.limit_in_bytes`, `pids.max`, `cpu.cfs_quota_us`,
equal `cpu.shares`). A job's group is `<parent>/archloop/serve-<pid>/job-<n>`, parent being
the serve process's own cgroup (so whatever caps the worker caps its candidates too) or
ARCHLOOP_CGROUP_PARENT (v2: an empty, delegated group). A candidate gets in through
descriptors: the trusted side opens the group's `cgroup.procs` and hands it over with the
job; the sandbox's init writes itself and the candidate into it before the candidate
reads its request (the kernel checks the opener's credentials, so the zygote needs no
cgroupfs). Where neither hierarchy can be used (not root, nothing delegated) `detect`
says why and the runner falls back to rlimits and per-slot uids.
"""

import errno
import itertools
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
V1_REQUIRED, V1_OPTIONAL = ("memory", "pids"), ("cpu",)
CPU_PERIOD_US = 100_000
REMOVE_TRIES = 50


class Unavailable(Exception):
    """No cgroup hierarchy this process may use: the reason, for logs and results."""


@dataclass(frozen=True)
class Caps:
    memory_bytes: int
    pids: int
    cpu_cores: float | None  # a quota; None: no quota (a fair share only)


OOM_FIRST = 1000  # every sandbox process's oom_score_adj (nest.oom_first)


@dataclass
class Usage:
    oom_kills: int = 0  # processes the kernel killed at the memory cap
    pids_refused: int = 0  # forks refused at the process cap
    peak_bytes: int | None = None
    oom_lowered: int = 0  # times a process of it was found with a lower oom_score_adj


def _write(path: Path, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


def _keyed(path: Path, key: str) -> int:
    """`key N` from a flat-keyed file (memory.events, pids.events, memory.oom_control); 0 when absent."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _number(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _procs(directory: Path) -> list[int]:
    try:
        return [int(pid) for pid in (directory / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


@dataclass
class Group:
    """One job's cgroup: one directory (v2) or one per controller (v1)."""

    version: str
    dirs: dict[str, Path]  # controller -> directory (v2: a single "" entry)
    caps: Caps
    _fds: list[int] = field(default_factory=list)

    def procs_fds(self) -> tuple[int, ...]:
        """Write-only descriptors of each directory's cgroup.procs (opened by create), for
        the sandbox's init; they stay ours to close."""
        return tuple(self._fds)

    def usage(self) -> Usage:
        memory, pids = self.dirs.get("memory", self.dirs.get("")), self.dirs.get("pids", self.dirs.get(""))
        if self.version == "v2":
            return Usage(_keyed(memory / "memory.events", "oom_kill"), _keyed(pids / "pids.events", "max"),
                         _number(memory / "memory.peak"))
        return Usage(_keyed(memory / "memory.oom_control", "oom_kill"), _keyed(pids / "pids.events", "max"),
                     _number(memory / "memory.max_usage_in_bytes"))

    def restore_oom_first(self) -> int:
        """Puts every process of the group that lowered its oom_score_adj back at 1000 (raising
        needs no privilege); how many had. Where root lacks CAP_SYS_RESOURCE, 1000 is no
        floor (nest.oom_first), so the trusted side watches for it instead."""
        lowered = 0
        for pid in _procs(next(iter(self.dirs.values()))):
            try:
                with open(f"/proc/{pid}/oom_score_adj", "r+") as handle:
                    if int(handle.read()) < OOM_FIRST:
                        handle.seek(0)
                        handle.write(str(OOM_FIRST))
                        lowered += 1
            except (OSError, ValueError):
                continue  # it ended meanwhile
        return lowered

    def remove(self) -> None:
        """Kills whatever is still in it (the sandbox's end normally took everything) and removes it."""
        for fd in self._fds:
            os.close(fd)
        self._fds = []
        for directory in self.dirs.values():
            _remove(directory)


def _remove(directory: Path) -> None:
    for _ in range(REMOVE_TRIES):
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as error:
            if error.errno != errno.EBUSY:
                return
        try:
            if (directory / "cgroup.kill").exists():  # v2: the whole group at once
                _write(directory / "cgroup.kill", "1")
        except OSError:
            pass
        for pid in _procs(directory):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)


@dataclass
class Hierarchy:
    """Where this process makes its jobs' groups: `serves` holds serve-<pid> per controller."""

    version: str
    serves: dict[str, Path]  # controller -> .../archloop/serve-<pid> (v2: a single "" entry)
    controllers: tuple[str, ...]
    # job numbers: next() on a count is atomic, and jobs make their groups from several threads
    _numbers: itertools.count = field(default_factory=lambda: itertools.count(1))

    def describe(self) -> str:
        where = next(iter(self.serves.values())).parent
        return f"cgroup {self.version} ({', '.join(self.controllers)}) under {where}"

    def create(self, caps: Caps) -> Group:
        name = f"job-{next(self._numbers)}"
        group = Group(self.version, {controller: serve / name for controller, serve in self.serves.items()}, caps)
        try:
            for directory in group.dirs.values():
                directory.mkdir()
            self._limit(group)
            for directory in group.dirs.values():
                group._fds.append(os.open(directory / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC))
        except OSError:
            group.remove()
            raise
        return group

    def _limit(self, group: Group) -> None:
        caps, d = group.caps, group.dirs
        quota = str(int(caps.cpu_cores * CPU_PERIOD_US)) if caps.cpu_cores else None
        if self.version == "v2":
            one = d[""]
            _write(one / "memory.max", str(caps.memory_bytes))
            if (one / "memory.swap.max").exists():
                _write(one / "memory.swap.max", "0")
            _write(one / "pids.max", str(caps.pids))
            if "cpu" in self.controllers:  # cpu.weight stays at its default: equal shares
                _write(one / "cpu.max", f"{quota or 'max'} {CPU_PERIOD_US}")
            return
        _write(d["memory"] / "memory.limit_in_bytes", str(caps.memory_bytes))
        if (d["memory"] / "memory.memsw.limit_in_bytes").exists():  # no swapping past the cap either
            _write(d["memory"] / "memory.memsw.limit_in_bytes", str(caps.memory_bytes))
        _write(d["pids"] / "pids.max", str(caps.pids))
        if "cpu" in d:  # cpu.shares stays at its default (1024): equal shares among jobs
            _write(d["cpu"] / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            _write(d["cpu"] / "cpu.cfs_quota_us", quota or "-1")

    def close(self) -> None:
        """Removes this process's groups (jobs' and its own)."""
        for serve in self.serves.values():
            for job in serve.glob("job-*"):
                _remove(job)
            _remove(serve)


def own_paths(text: str) -> dict[str, str]:
    """controller -> this process's cgroup path, from /proc/self/cgroup (v2: key "")."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                paths[controller] = parts[2]
    return paths


def _serve_dir(base: Path, pid: int) -> Path:
    archloop = base / "archloop"
    archloop.mkdir(exist_ok=True)
    _sweep(archloop)
    serve = archloop / f"serve-{pid}"
    serve.mkdir(exist_ok=True)
    return serve


def _sweep(archloop: Path) -> None:
    """Groups of serve processes that are gone (killed with their worker)."""
    for serve in archloop.glob("serve-*"):
        pid = serve.name.removeprefix("serve-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            for job in serve.glob("job-*"):
                _remove(job)
            _remove(serve)


def _v2(root: Path, own: dict[str, str], parent: str | None, pid: int) -> Hierarchy:
    mount = root if (root / "cgroup.controllers").exists() else root / "unified"
    try:
        available = (mount / "cgroup.controllers").read_text().split()
    except OSError as error:
        raise Unavailable(f"no cgroup v2 hierarchy at {root}") from error
    if not {"memory", "pids"} <= set(available):
        raise Unavailable(f"cgroup v2 at {mount} offers {' '.join(available) or 'no controllers'}, not memory and pids")
    controllers = tuple(c for c in ("memory", "pids", "cpu") if c in available)
    base = mount / (parent if parent is not None else own.get("", "/")).lstrip("/")
    enable = " ".join(f"+{c}" for c in controllers)
    try:
        if set(controllers) - set((base / "cgroup.controllers").read_text().split()):
            raise Unavailable(f"{base} is not given {' '.join(controllers)} by its parent (delegate them)")
        _write(base / "cgroup.subtree_control", enable)  # EBUSY when base itself holds processes
        archloop = base / "archloop"
        archloop.mkdir(exist_ok=True)
        _write(archloop / "cgroup.subtree_control", enable)
        serve = _serve_dir(base, pid)
        _write(serve / "cgroup.subtree_control", enable)
    except OSError as error:
        raise Unavailable(f"cannot enable {' '.join(controllers)} below {base} ({error.strerror}); give the worker "
                          "an empty delegated cgroup and set ARCHLOOP_CGROUP_PARENT to it") from error
    return Hierarchy("v2", {"": serve}, controllers)


def _v1(root: Path, own: dict[str, str], parent: str | None, pid: int) -> Hierarchy:
    present = [c for c in (*V1_REQUIRED, *V1_OPTIONAL) if (root / c / "cgroup.procs").exists()]
    missing = [c for c in V1_REQUIRED if c not in present]
    if missing:
        raise Unavailable(f"no cgroup v1 {' or '.join(missing)} controller mounted under {root}")
    serves: dict[str, Path] = {}
    try:
        for controller in present:
            base = root / controller / (parent if parent is not None else own.get(controller, "/")).lstrip("/")
            serves[controller] = _serve_dir(base, pid)
    except OSError as error:
        raise Unavailable(f"cgroup v1 under {root} is not writable here ({error.strerror})") from error
    return Hierarchy("v1", serves, tuple(present))


def detect(env: dict[str, str] | None = None, root: Path = ROOT, pid: int | None = None,
           proc_cgroup: str = "/proc/self/cgroup") -> Hierarchy:
    """The hierarchy to use (v2 first), or Unavailable with the reasons. ARCHLOOP_CGROUP=off
    turns it off (tests, or a machine whose cgroups belong to someone else)."""
    env = os.environ if env is None else env
    if env.get("ARCHLOOP_CGROUP") == "off":
        raise Unavailable("turned off (ARCHLOOP_CGROUP=off)")
    pid = os.getpid() if pid is None else pid
    try:
        own = own_paths(Path(proc_cgroup).read_text())
    except OSError:
        own = {}
    parent = env.get("ARCHLOOP_CGROUP_PARENT") or None
    reasons = []
    for attempt in (_v2, _v1):
        try:
            return attempt(root, own, parent, pid)
        except Unavailable as reason:
            reasons.append(str(reason))
    raise Unavailable("; ".join(reasons))
