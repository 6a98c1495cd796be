"""The per-candidate sandbox a zygote's child builds for itself (Linux system calls, ctypes).

The zygote (zygote.py) runs inside the outer bubblewrap sandbox with torch imported and
never runs candidate code. For each job it forks, and the child makes a sandbox nested in
the outer one, fresh for this candidate alone: new mount, PID, IPC, network, UTS and
cgroup namespaces; fresh size-capped tmpfs on /job, /tmp and /dev/shm; a read-only /data
with copies of this job's files; its own /proc;
then the candidate process drops to the slot's uid (root workers) or to no capabilities
(in the outer user namespace), sets no_new_privs and loads the same seccomp filter bwrap
loads. What stays shared with the zygote is only what the outer sandbox already made
read-only, and the zygote's memory as it was at fork time (torch imported, no secrets).
"""

import ctypes
import errno
import os
import signal
import struct
from collections.abc import Iterable

CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS = 0x00020000, 0x02000000, 0x04000000
CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x08000000, 0x20000000, 0x40000000
JOB_NAMESPACES = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20, 0x1000, 0x4000, 0x40000

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_SECCOMP = 1, 4, 22
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 24, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SECCOMP_MODE_FILTER = 2
CAPABILITY_VERSION_3 = 0x20080522
LAST_CAP_FALLBACK = 40
# bwrap --proc covers these with read-only binds of themselves; so do we
PROC_COVERS = ("sys", "sysrq-trigger", "irq", "bus")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class NestError(OSError):
    """The nested sandbox could not be built: an infrastructure problem, never the candidate's."""


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise NestError(code, f"{what}: {os.strerror(code)}")


def _prctl(option: int, a: int = 0, b: int = 0) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(a), ctypes.c_ulong(b), ctypes.c_ulong(0), ctypes.c_ulong(0)), f"prctl({option})")


def unshare_namespaces() -> None:
    """New mount, PID (for the children), IPC, network, UTS and, where the kernel has it, cgroup namespaces."""
    if _libc.unshare(JOB_NAMESPACES | CLONE_NEWCGROUP) == 0:
        return
    if ctypes.get_errno() != errno.EINVAL:
        _check(-1, "unshare")
    _check(_libc.unshare(JOB_NAMESPACES), "unshare")


def _mount(source: bytes | None, target: str, fstype: bytes | None, flags: int, data: bytes | None = None) -> None:
    _check(_libc.mount(source, target.encode(), fstype, ctypes.c_ulong(flags), data), f"mount {target}")


def private_mounts() -> None:
    """Nothing mounted here propagates back to the zygote's namespace."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)


def fresh_tmpfs(path: str, size_bytes: int, keep: Iterable[str] = ()) -> None:
    """A new empty tmpfs over `path`. `keep`: read-only binds under it that must stay
    visible (a checkout or venv under /tmp); they are reached through O_PATH descriptors
    taken before they are covered, and bound back."""
    held = [(target, os.open(target, os.O_PATH | os.O_CLOEXEC)) for target in keep]
    _mount(b"tmpfs", path, b"tmpfs", MS_NOSUID | MS_NODEV, f"size={size_bytes},mode=1777".encode())
    for target, fd in held:
        try:
            if os.path.isdir(f"/proc/self/fd/{fd}"):
                os.makedirs(target, mode=0o755, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
                open(target, "a").close()
            _mount(f"/proc/self/fd/{fd}".encode(), target, None, MS_BIND | MS_REC)
            _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        finally:
            os.close(fd)


def resize_tmpfs(path: str, size_bytes: int) -> None:
    _mount(None, path, None, MS_REMOUNT | MS_NOSUID | MS_NODEV, f"size={size_bytes}".encode())


def data_files(path: str, files: list[tuple[str, int, int]]) -> None:
    """A fresh tmpfs at `path` holding copies of the job's files ((name, fd, size); mode
    0444), then made read-only. The descriptors are closed."""
    total = sum(size for _, _, size in files)
    _mount(b"tmpfs", path, b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"size={total + (1 << 20)},mode=0755".encode())
    for name, fd, size in files:
        target = os.path.join(path, os.path.basename(name))
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        try:
            offset = 0
            while offset < size:
                sent = os.sendfile(out, fd, offset, size - offset)
                if sent == 0:
                    raise NestError(errno.EIO, f"{name}: short copy ({offset} of {size} bytes)")
                offset += sent
        finally:
            os.close(out)
            os.close(fd)
    _mount(None, path, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)


def fresh_proc() -> None:
    """/proc of the new PID namespace (so the candidate sees only its own processes), with
    the kernel-tunable parts read-only as bwrap leaves them."""
    _mount(b"proc", "/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for name in PROC_COVERS:
        path = f"/proc/{name}"
        if os.path.exists(path):
            _mount(path.encode(), path, None, MS_BIND | MS_REC)
            _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)


def oom_first() -> None:
    """oom_score_adj 1000: under memory pressure the kernel kills the sandbox's processes
    before anything outside it. Written with CAP_SYS_RESOURCE (root workers' zygotes, where
    root has it), it is also the floor: the candidate, which has no capability, cannot
    lower it. Without that capability (a non-root worker; a root whose bounding set lacks
    it, as on the build VMs) the candidate could lower it again: then only the job's
    cgroup bounds its memory.
    Its /proc/self files belong to the caller only while it is dumpable (in a user
    namespace, not at all otherwise), so for this write alone it is."""
    set_dumpable(True)
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")
    finally:
        set_dumpable(False)


def join_cgroups(procs_fds: list[int], pids: tuple[int, ...]) -> None:
    """Moves `pids` (0: this process) into each group whose cgroup.procs the trusted side
    opened for this job (sandbox/cgroup.py; the kernel checks the opener's credentials),
    then closes the descriptors: nothing of them reaches the candidate."""
    try:
        for fd in procs_fds:
            for pid in pids:
                os.write(fd, f"{pid}\n".encode())
    except OSError as error:
        raise NestError(error.errno, f"joining the job's cgroup: {error.strerror}") from error
    finally:
        for fd in procs_fds:
            os.close(fd)


def die_with_parent() -> None:
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def set_dumpable(flag: bool) -> None:
    _prctl(PR_SET_DUMPABLE, int(flag))


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as handle:
            return int(handle.read())
    except (OSError, ValueError):
        return LAST_CAP_FALLBACK


def drop_bounding_set() -> None:
    """No capability can come back through exec (needs CAP_SETPCAP, so before the uid switch)."""
    for cap in range(last_cap() + 1):
        if _libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0) != 0 and ctypes.get_errno() != errno.EINVAL:
            _check(-1, f"drop capability {cap} from the bounding set")
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def clear_capabilities() -> None:
    """Empty effective, permitted and inheritable sets (capset, version 3)."""
    header = struct.pack("=Ii", CAPABILITY_VERSION_3, 0)
    data = bytes(24)  # two (effective, permitted, inheritable) u32 triples
    _check(_libc.syscall(SYS_CAPSET, header, data), "capset")


def become(uid: int, gid: int) -> None:
    """Root workers: the slot's uid and gid, no supplementary groups (capabilities go with uid 0)."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def no_new_privs() -> None:
    _prctl(PR_SET_NO_NEW_PRIVS, 1)


def load_seccomp(program: bytes) -> None:
    """The classic BPF program (sandbox/seccomp.py) as bwrap --seccomp would load it."""
    count = len(program) // 8
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = ctypes.create_string_buffer(struct.pack("=HxxxxxxQ", count, ctypes.addressof(buffer)), 16)
    _check(_libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), fprog, 0, 0),
           "load the seccomp filter")


SYS_CAPSET = {"x86_64": 126, "aarch64": 91}.get(os.uname().machine, -1)
