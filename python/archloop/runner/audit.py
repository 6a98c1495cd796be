"""A PEP 578 audit hook installed before candidate code is imported.

Not the security boundary (the sandbox is; a determined program can dodge an audit hook
via C code), but it turns the common hostile moves into a precise `sandbox-violation`
instead of a confusing downstream error, and adds a layer in --unsafe-no-sandbox mode.
Audit hooks cannot be removed once added, and this one has no switch either: an on/off
flag would be an object candidate code can find (gc.get_objects) and flip, so it is armed
from the moment it is installed, just before the candidate is imported, for good. The
caps that hold against forks and memory are the kernel's (cgroup, rlimits), not this hook.
"""

import sys

from archloop.runner.failures import SandboxViolation

_BLOCKED_EVENTS = {
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen",
    "os.kill", "os.killpg", "pty.spawn", "socket.connect", "socket.bind", "socket.getaddrinfo",
    "socket.gethostbyname", "socket.gethostbyaddr", "socket.sendto", "ctypes.dlopen", "ctypes.dlsym",
    "ctypes.call_function", "ctypes.cdata", "ctypes.dlsym/handle", "sys.setprofile", "sys.settrace",
    "os.chmod", "os.chown", "os.link", "os.symlink", "os.setxattr", "webbrowser.open", "urllib.Request",
}
_WRITE_EVENTS = {"os.remove", "os.rmdir", "os.rename", "os.truncate", "os.mkdir", "shutil.rmtree", "shutil.copyfile"}


def _writes(mode: object, flags: object) -> bool:
    if isinstance(mode, str) and any(ch in mode for ch in "wax+"):
        return True
    return isinstance(flags, int) and bool(flags & 0o3)  # O_WRONLY | O_RDWR


def install(writable_roots: tuple[str, ...]) -> None:
    """From now on, refuse blocked events; writes only under writable_roots."""
    roots = tuple(r.rstrip("/") + "/" for r in writable_roots)

    def inside(path: object) -> bool:
        text = path.decode(errors="replace") if isinstance(path, bytes) else str(path)
        return text.startswith(roots) or text in {r.rstrip("/") for r in roots}

    def hook(event: str, args: tuple) -> None:
        if event in _BLOCKED_EVENTS:
            raise SandboxViolation(f"{event} is not allowed in candidate code")
        if event == "open" and len(args) >= 3 and _writes(args[1], args[2]) and not isinstance(args[0], int):
            if not inside(args[0]):
                raise SandboxViolation(f"writing {args[0]!r} is not allowed (only the job directory)")
        elif event in _WRITE_EVENTS and args and not inside(args[0]):
            raise SandboxViolation(f"{event} on {args[0]!r} is not allowed (only the job directory)")

    sys.addaudithook(hook)
