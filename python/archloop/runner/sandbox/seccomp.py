"""The seccomp filter every candidate runs under (loaded by its zygote's child, nest.py;
bwrap --seccomp FD for the zygote itself, with `mount` and some namespaces allowed).

Hand-assembled classic BPF (struct sock_filter, 8 bytes each) rather than libseccomp:
the Python bindings of libseccomp are not on PyPI as a wheel (they build against the C
library's headers), and the filter is small enough to assemble and test here. The syscall
numbers are checked against the kernel headers by python/tests/runner/test_containment.py.

What it denies (EPERM unless noted), on top of what bwrap, the dropped uid and
`--disable-userns` already prevent:
- new namespaces: `unshare` and `clone` with any CLONE_NEW* flag (so no user namespace and
  no capability set inside one), `setns`; `clone3` answers ENOSYS, because BPF cannot read
  its flags (they sit in a struct in memory) and glibc then falls back to `clone`;
- mounting: `mount`, `umount2`, `pivot_root`, `chroot`, the new mount API;
- looking into or tampering with other processes: `ptrace`, `process_vm_*`, `kcmp`,
  `pidfd_getfd`; terminal injection (`ioctl` TIOCSTI/TIOCLINUX);
- large kernel attack surface an unprivileged program can reach: `bpf`, `perf_event_open`,
  `userfaultfd`, `io_uring_*`, `keyctl`/`add_key`/`request_key`, `open_by_handle_at`,
  `fanotify_init`;
- what only needs privileges the sandbox never has (defence in depth): modules, kexec,
  reboot, swap, acct, clocks, quotas, syslog, iopl/ioperm…;
- any other syscall ABI (x32 on x86-64; a foreign architecture kills the process).
"""

import errno
import platform
import struct
from dataclasses import dataclass

# <linux/audit.h>
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_SYSCALL_BIT = 0x40000000

# <linux/seccomp.h>
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000

# <linux/sched.h>: every CLONE_NEW* flag (CLONE_NEWTIME is only accepted by unshare/clone3)
CLONE_NEW_FLAGS = 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00020000 | 0x00000080
# What a zygote may unshare to build a candidate's nested sandbox: mount, cgroup, UTS, IPC,
# PID and network namespaces; never a user namespace (nor a time namespace).
ZYGOTE_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x20000000 | 0x40000000
TIOCSTI, TIOCLINUX = 0x5412, 0x541C

# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6] (little endian)
OFFSET_NR, OFFSET_ARCH, OFFSET_ARG0, OFFSET_ARG1 = 0, 4, 16, 24

# classic BPF opcodes
LD_W_ABS = 0x20
JEQ_K, JGE_K, JSET_K = 0x15, 0x35, 0x45
RET_K = 0x06

DENIED = (
    "setns", "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
    "open_tree", "mount_setattr", "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "bpf",
    "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "keyctl", "add_key",
    "request_key", "open_by_handle_at", "name_to_handle_at", "fanotify_init", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff", "acct", "syslog", "quotactl",
    "quotactl_fd", "lookup_dcookie", "vhangup", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "nfsservctl", "iopl", "ioperm", "uselib", "_sysctl", "sysfs", "ustat",
)

# Syscall numbers per architecture (asm/unistd_64.h for x86-64, asm-generic/unistd.h for aarch64).
X86_64 = {
    "unshare": 272, "clone": 56, "clone3": 435, "ioctl": 16, "setns": 308, "mount": 165, "umount2": 166,
    "pivot_root": 155, "chroot": 161, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "move_mount": 429,
    "open_tree": 428, "mount_setattr": 442, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312,
    "pidfd_getfd": 438, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "keyctl": 250, "add_key": 248, "request_key": 249,
    "open_by_handle_at": 304, "name_to_handle_at": 303, "fanotify_init": 300, "kexec_load": 246, "kexec_file_load": 320,
    "init_module": 175, "finit_module": 313, "delete_module": 176, "reboot": 169, "swapon": 167, "swapoff": 168,
    "acct": 163, "syslog": 103, "quotactl": 179, "quotactl_fd": 443, "lookup_dcookie": 212, "vhangup": 153,
    "settimeofday": 164, "clock_settime": 227, "clock_adjtime": 305, "adjtimex": 159, "nfsservctl": 180, "iopl": 172,
    "ioperm": 173, "uselib": 134, "_sysctl": 156, "sysfs": 139, "ustat": 136,
}
AARCH64 = {
    "unshare": 97, "clone": 220, "clone3": 435, "ioctl": 29, "setns": 268, "mount": 40, "umount2": 39,
    "pivot_root": 41, "chroot": 51, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "move_mount": 429,
    "open_tree": 428, "mount_setattr": 442, "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272,
    "pidfd_getfd": 438, "bpf": 280, "perf_event_open": 241, "userfaultfd": 282, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "keyctl": 219, "add_key": 217, "request_key": 218,
    "open_by_handle_at": 265, "name_to_handle_at": 264, "fanotify_init": 262, "kexec_load": 104, "kexec_file_load": 294,
    "init_module": 105, "finit_module": 273, "delete_module": 106, "reboot": 142, "swapon": 224, "swapoff": 225,
    "acct": 89, "syslog": 116, "quotactl": 60, "quotactl_fd": 443, "lookup_dcookie": 18, "vhangup": 58,
    "settimeofday": 170, "clock_settime": 112, "clock_adjtime": 266, "adjtimex": 171, "nfsservctl": 42,
}


@dataclass(frozen=True)
class Arch:
    audit: int
    numbers: dict[str, int]
    x32: bool  # the x32 ABI shares the audit arch and sets X32_SYSCALL_BIT


ARCHES = {"x86_64": Arch(AUDIT_ARCH_X86_64, X86_64, True), "aarch64": Arch(AUDIT_ARCH_AARCH64, AARCH64, False)}


class UnsupportedArch(Exception):
    """No syscall table for this machine: the sandbox refuses rather than run unfiltered."""


class Program:
    """A tiny assembler: instructions with symbolic jump targets, resolved to BPF's 8-bit offsets."""

    def __init__(self) -> None:
        self.code: list[tuple[int, object, object, int]] = []
        self.labels: dict[str, int] = {}

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def emit(self, op: int, k: int, jt: object = 0, jf: object = 0) -> None:
        self.code.append((op, jt, jf, k))

    def assemble(self) -> bytes:
        out = bytearray()
        for index, (op, jt, jf, k) in enumerate(self.code):
            offsets = []
            for target in (jt, jf):
                offset = target if isinstance(target, int) else self.labels[target] - index - 1
                if not 0 <= offset <= 255:
                    raise ValueError(f"jump offset {offset} out of range at instruction {index}")
                offsets.append(offset)
            out += struct.pack("=HBBI", op, offsets[0], offsets[1], k & 0xFFFFFFFF)
        return bytes(out)


def build(arch: Arch, zygote: bool = False) -> bytes:
    """zygote: the outer filter of a zygote's sandbox, which also allows `mount` and
    unsharing ZYGOTE_NAMESPACES (its children build each candidate's nested sandbox, then
    load the full filter on top: filters stack, the strictest answer wins)."""
    eperm, enosys = RET_ERRNO | errno.EPERM, RET_ERRNO | errno.ENOSYS
    numbers = arch.numbers
    p = Program()
    p.emit(LD_W_ABS, OFFSET_ARCH)
    p.emit(JEQ_K, arch.audit, 0, "kill")
    p.emit(LD_W_ABS, OFFSET_NR)
    if arch.x32:
        p.emit(JGE_K, X32_SYSCALL_BIT, "deny", 0)
    p.emit(JEQ_K, numbers["clone"], "check_flags", 0)
    p.emit(JEQ_K, numbers["unshare"], "check_unshare" if zygote else "check_flags", 0)
    p.emit(JEQ_K, numbers["clone3"], "enosys", 0)
    p.emit(JEQ_K, numbers["ioctl"], "check_ioctl", 0)
    for name in DENIED:
        if name in numbers and not (zygote and name == "mount"):
            p.emit(JEQ_K, numbers[name], "deny", 0)
    p.emit(RET_K, RET_ALLOW)
    if zygote:
        p.label("check_unshare")
        p.emit(LD_W_ABS, OFFSET_ARG0)
        p.emit(JSET_K, CLONE_NEW_FLAGS & ~ZYGOTE_NAMESPACES, "deny", "allow")
    p.label("check_flags")  # clone(flags, …) and unshare(flags): flags in the low word of arg 0
    p.emit(LD_W_ABS, OFFSET_ARG0)
    p.emit(JSET_K, CLONE_NEW_FLAGS, "deny", "allow")
    p.label("check_ioctl")  # ioctl(fd, request, …): request is an unsigned int in arg 1
    p.emit(LD_W_ABS, OFFSET_ARG1)
    p.emit(JEQ_K, TIOCSTI, "deny", 0)
    p.emit(JEQ_K, TIOCLINUX, "deny", "allow")
    p.label("allow")  # BPF jumps only forward: the argument checks end here
    p.emit(RET_K, RET_ALLOW)
    p.label("deny")
    p.emit(RET_K, eperm)
    p.label("enosys")
    p.emit(RET_K, enosys)
    p.label("kill")
    p.emit(RET_K, RET_KILL_PROCESS)
    return p.assemble()


def for_machine(machine: str | None = None, zygote: bool = False) -> bytes:
    """The filter for this machine's architecture, as bwrap --seccomp reads it (zygote: the
    zygote's outer filter, see build)."""
    machine = machine or platform.machine()
    arch = ARCHES.get({"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine))
    if arch is None:
        raise UnsupportedArch(f"no seccomp syscall table for {machine}: refusing to run untrusted code unfiltered")
    return build(arch, zygote)
