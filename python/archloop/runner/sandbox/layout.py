"""The bubblewrap command line: a pure function of what the sandbox may see.

Inside: /usr and the host's /lib* links, /etc/ld.so.cache, the venv and its base
interpreter (both read-only, at their host paths because the venv refers to them by
absolute path), the runner package alone under /opt/archloop, the dataset files minus the
test labels under /data, a size-capped private tmpfs /job (also /tmp), fresh /proc and
/dev. Nothing else of the host exists: not the repo, /root, /home, the host /tmp or any
socket. Network, PID, IPC, UTS and cgroup namespaces are new (no network at all).
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from .identity import Identity

JOB_DIR = "/job"
DATA_DIR = "/data"
PACKAGE_ROOT = "/opt/archloop"
SETPRIV = "/usr/bin/setpriv"


@dataclass(frozen=True)
class Layout:
    python: str  # the venv interpreter, e.g. /work/main/.venv/bin/python
    venv: str  # sys.prefix
    base_python: str  # sys.base_prefix (pyenv version dir)
    package_dir: str  # .../python/archloop
    data_files: dict[str, str]  # name inside /data -> host path
    identity: Identity
    job_dir_bytes: int
    env: dict[str, str] = field(default_factory=dict)
    gpu: bool = False
    extra_ro_binds: tuple[str, ...] = ()


def gpu_device_nodes() -> list[str]:
    return sorted(glob.glob("/dev/nvidia*")) + sorted(glob.glob("/dev/dri/renderD*"))


def _root_links() -> list[str]:
    """Mirror /bin, /lib, /lib64, /sbin: symlinks on merged-/usr systems, else read-only binds."""
    args: list[str] = []
    for name in ("bin", "lib", "lib64", "lib32", "libx32", "sbin"):
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    return args


def bwrap_args(layout: Layout, inner_command: list[str]) -> list[str]:
    ident = layout.identity
    args = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    if not ident.drop_privileges:
        # Not root: an unprivileged user namespace is what lets bwrap run at all.
        args += ["--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
    args += ["--die-with-parent", "--new-session", "--hostname", "sandbox", "--clearenv"]
    for key, value in sorted(layout.env.items()):
        args += ["--setenv", key, value]
    args += ["--ro-bind", "/usr", "/usr", *_root_links()]
    if Path("/etc/ld.so.cache").exists():
        args += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    args += ["--ro-bind", layout.base_python, layout.base_python]
    if layout.venv != layout.base_python:
        args += ["--ro-bind", layout.venv, layout.venv]
    package = Path(layout.package_dir)
    args += ["--ro-bind", str(package / "__init__.py"), f"{PACKAGE_ROOT}/archloop/__init__.py",
             "--ro-bind", str(package / "runner"), f"{PACKAGE_ROOT}/archloop/runner"]
    for name, host_path in sorted(layout.data_files.items()):
        args += ["--ro-bind", host_path, f"{DATA_DIR}/{name}"]
    for path in layout.extra_ro_binds:
        args += ["--ro-bind-try", path, path]
    args += ["--proc", "/proc", "--dev", "/dev"]
    if layout.gpu:
        for node in gpu_device_nodes():
            args += ["--dev-bind", node, node]
        args += ["--ro-bind", "/sys", "/sys"]
    args += ["--size", str(layout.job_dir_bytes), "--perms", "1777", "--tmpfs", JOB_DIR,
             "--symlink", JOB_DIR, "/tmp", "--chdir", JOB_DIR]
    if ident.drop_privileges:
        inner_command = [SETPRIV, f"--reuid={ident.uid}", f"--regid={ident.gid}", "--clear-groups",
                         "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", *inner_command]
    return [*args[:5], *_parent_dirs(args), *args[5:], "--", *inner_command]


_DEST_AFTER = {"--ro-bind": 2, "--ro-bind-try": 2, "--dev-bind": 2}


def _parent_dirs(args: list[str]) -> list[str]:
    """World-traversable parents for every bind target (bwrap would create them 0700,
    which the dropped uid could not enter)."""
    parents: set[str] = set()
    for i, arg in enumerate(args):
        if arg in _DEST_AFTER and i + 2 < len(args):
            parent = Path(args[i + 2]).parent
            while str(parent) != "/":
                parents.add(str(parent))
                parent = parent.parent
    out: list[str] = []
    for directory in sorted(parents, key=lambda p: (p.count("/"), p)):
        out += ["--perms", "0755", "--dir", directory]
    return out
