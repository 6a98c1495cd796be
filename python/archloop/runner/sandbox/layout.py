"""The bubblewrap command line: a pure function of what the sandbox may see.

Inside, read-only: the system's shared-library directory (/usr/lib/<triplet>, /usr/lib64)
and the /lib* links, /etc/ld.so.cache, the interpreter binary, its standard library (the
base installation's site-packages masked), the venv, the runner's inner modules alone under
/opt/archloop (not the dataset builders, not the launcher), and the job's data files under
/data. Nothing else of the host exists: not /usr/share (Debian keeps Fashion-MNIST's IDX
files in /usr/share/datasets), /usr/bin (only setpriv, for root workers), the repo, /root,
/home, the host /tmp or any socket. Writable: size-capped tmpfs /job, /tmp and /dev/shm;
everything else is read-only, / included. Network, PID, IPC, UTS and cgroup namespaces are
new (no network at all), and a seccomp filter (seccomp.py) denies new namespaces, mounts
and other kernel surface.
"""

import os
import platform
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from archloop.runner.sandbox.identity import Identity

JOB_DIR = "/job"
DATA_DIR = "/data"
PACKAGE_ROOT = "/opt/archloop"
SETPRIV = "/usr/bin/setpriv"
# The modules the sandboxed process imports (archloop.runner.inner and what it uses).
INNER_MODULES = ("__init__", "inner", "zygote", "nest", "lifeline", "audit", "protocol", "failures", "validate", "train",
                 "batches", "candidate", "contract", "graph_ir", "flops", "structural_hash", "loss_monitor", "stages",
                 "meter", "handover")
MASK_BYTES = 4096


@dataclass(frozen=True)
class Interpreter:
    python: str  # the venv interpreter as invoked, e.g. <repo>/.venv/bin/python
    executable: str  # the binary it resolves to
    venv: str  # sys.prefix
    stdlib: str  # the base installation's standard library
    libraries: tuple[str, ...] = ()  # libpython, when outside the system library directories
    masked: tuple[str, ...] = ()  # directories inside bound ones that stay hidden (base site-packages)


@dataclass(frozen=True)
class GpuView:
    nodes: tuple[str, ...]
    sys_binds: tuple[str, ...] = ()
    sys_links: tuple[tuple[str, str], ...] = ()  # (link, target)
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Layout:
    interpreter: Interpreter
    system_dirs: tuple[str, ...]
    package_dir: str  # .../python/archloop
    data_binds: dict[str, str]  # name inside /data -> host file
    data_fds: dict[str, int]  # name inside /data -> fd whose content bwrap copies in
    identity: Identity
    seccomp_fd: int
    job_dir_bytes: int
    tmp_bytes: int
    shm_bytes: int
    env: dict[str, str] = field(default_factory=dict)
    gpu: GpuView | None = None
    extra_ro_binds: tuple[str, ...] = ()
    # A zygote keeps these capabilities (to build its candidates' nested sandboxes, which
    # drop them again) instead of dropping to the slot's uid with setpriv.
    capabilities: tuple[str, ...] = ()
    empty_dirs: tuple[str, ...] = ()  # mount points (a zygote's /data, filled per job)


def triplet(machine: str | None = None) -> str:
    return sysconfig.get_config_var("MULTIARCH") or f"{machine or platform.machine()}-linux-gnu"


def system_dirs(exists=os.path.isdir) -> tuple[str, ...]:
    """Where the system keeps shared libraries (Debian: /usr/lib/<triplet>; others: /usr/lib64)."""
    return tuple(d for d in (f"/usr/lib/{triplet()}", "/usr/lib64") if exists(d))


def interpreter() -> Interpreter:
    python = os.path.normpath(sys.executable)
    stdlib = sysconfig.get_path("stdlib")
    library = Path(sysconfig.get_config_var("LIBDIR") or "", sysconfig.get_config_var("INSTSONAME") or "")
    under_system = any(str(library).startswith(d + "/") for d in system_dirs())
    libraries = (str(library),) if library.is_file() and not under_system else ()
    site = Path(stdlib, "site-packages")
    return Interpreter(python=python, executable=os.path.realpath(python), venv=sys.prefix, stdlib=stdlib,
                       libraries=libraries, masked=(str(site),) if site.is_dir() else ())


def _root_links(is_symlink=os.path.islink, readlink=os.readlink, is_dir=os.path.isdir) -> list[str]:
    """Mirror /bin, /lib, /lib64, /sbin: symlinks on merged-/usr systems, else read-only binds."""
    args: list[str] = []
    for name in ("bin", "lib", "lib64", "lib32", "libx32", "sbin"):
        host = f"/{name}"
        if is_symlink(host):
            args += ["--symlink", readlink(host), host]
        elif is_dir(host):
            args += ["--ro-bind", host, host]
    return args


def _ro(path: str) -> list[str]:
    return ["--ro-bind", path, path]


def bwrap_args(layout: Layout, inner_command: list[str], root_links: list[str] | None = None) -> list[str]:
    ident = layout.identity
    flags = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    keep = [arg for cap in layout.capabilities for arg in ("--cap-add", cap)]
    if not ident.drop_privileges:
        # Not root: an unprivileged user namespace is what lets bwrap run at all.
        flags += ["--unshare-user", "--disable-userns", "--cap-drop", "ALL", *keep]
    elif keep:
        flags += ["--cap-drop", "ALL", *keep]
    flags += ["--die-with-parent", "--new-session", "--hostname", "sandbox", "--clearenv"]
    env = dict(layout.env)
    if layout.gpu:
        env.update(layout.gpu.env)
    for key, value in sorted(env.items()):
        flags += ["--setenv", key, value]

    # /tmp first: a venv or checkout under /tmp is then bound inside this tmpfs.
    mounts = ["--perms", "1777", "--size", str(layout.tmp_bytes), "--tmpfs", "/tmp"]
    binds: list[str] = []
    for directory in layout.system_dirs:
        binds += _ro(directory)
    binds += root_links if root_links is not None else _root_links()
    if Path("/etc/ld.so.cache").exists():
        binds += _ro("/etc/ld.so.cache")
    if ident.drop_privileges and not layout.capabilities:
        binds += _ro(SETPRIV)
    interp = layout.interpreter
    binds += _ro(interp.executable) + _ro(interp.stdlib)
    for library in interp.libraries:
        binds += _ro(library)
    binds += _ro(interp.venv)
    package = Path(layout.package_dir)
    binds += ["--ro-bind", str(package / "__init__.py"), f"{PACKAGE_ROOT}/archloop/__init__.py"]
    for name in INNER_MODULES:
        binds += ["--ro-bind", str(package / "runner" / f"{name}.py"), f"{PACKAGE_ROOT}/archloop/runner/{name}.py"]
    for directory in layout.empty_dirs:
        binds += ["--perms", "0755", "--dir", directory]
    for name, host_path in sorted(layout.data_binds.items()):
        binds += ["--ro-bind", host_path, f"{DATA_DIR}/{name}"]
    for name, fd in sorted(layout.data_fds.items()):
        binds += ["--perms", "0444", "--ro-bind-data", str(fd), f"{DATA_DIR}/{name}"]
    for path in layout.extra_ro_binds:
        binds += ["--ro-bind-try", path, path]
    if layout.gpu:
        for path in layout.gpu.sys_binds:
            binds += _ro(path)
        for link, target in layout.gpu.sys_links:
            binds += ["--symlink", target, link]
    masks: list[str] = []
    for path in interp.masked:
        masks += ["--size", str(MASK_BYTES), "--perms", "0555", "--tmpfs", path, "--remount-ro", path]
    devices = ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(layout.shm_bytes), "--tmpfs", "/dev/shm"]
    for node in layout.gpu.nodes if layout.gpu else ():
        devices += ["--dev-bind", node, node]
    job = ["--perms", "1777", "--size", str(layout.job_dir_bytes), "--tmpfs", JOB_DIR, "--chdir", JOB_DIR]
    seal = ["--remount-ro", "/dev", "--remount-ro", "/", "--seccomp", str(layout.seccomp_fd)]
    if ident.drop_privileges and not layout.capabilities:
        inner_command = [SETPRIV, f"--reuid={ident.uid}", f"--regid={ident.gid}", "--clear-groups",
                         "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", *inner_command]
    return [*flags, *mounts, *_parent_dirs(binds), *binds, *masks, *devices, *job, *seal, "--", *inner_command]


def kept_under_tmp(argv: list[str]) -> list[str]:
    """Read-only binds under /tmp (a venv or checkout there): a candidate's fresh /tmp must
    bind them again (nest.fresh_tmpfs). Outermost only."""
    targets = sorted({argv[i + 2] for i, arg in enumerate(argv[:-2]) if arg in ("--ro-bind", "--ro-bind-try")
                      and argv[i + 2].startswith("/tmp/")})
    kept: list[str] = []
    for target in targets:
        if not any(target.startswith(parent + "/") for parent in kept):
            kept.append(target)
    return kept


_DEST_AFTER = {"--ro-bind": 2, "--ro-bind-try": 2, "--dev-bind": 2, "--ro-bind-data": 2, "--symlink": 2}


def _parent_dirs(args: list[str]) -> list[str]:
    """World-traversable parents for every bind target (bwrap would create them 0700,
    which the dropped uid could not enter)."""
    parents: set[str] = set()
    for i, arg in enumerate(args):
        if arg in _DEST_AFTER and i + 2 < len(args):
            parent = Path(args[i + 2]).parent
            while str(parent) not in ("/", "/tmp"):
                parents.add(str(parent))
                parent = parent.parent
    out: list[str] = []
    for directory in sorted(parents, key=lambda p: (p.count("/"), p)):
        out += ["--perms", "0755", "--dir", directory]
    return out
