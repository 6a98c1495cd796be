"""The sandbox's walls, probed directly in both modes it runs in: as root (bwrap, a zygote
that puts each candidate on a per-slot uid) and as an ordinary user (bwrap in an
unprivileged user namespace, the candidate without capabilities).

The probe is a plain script that a zygote (zygote.py --probe) runs as its candidate, in
the nested sandbox it builds for every candidate (nest.py), inside the very outer layout
the runner builds (sandbox/layout.py, with the zygote's seccomp filter). Debian's python3
runs it, so the non-root mode is tested even though the venv's interpreter lives under
/root, which other users cannot enter. The runner's own end-to-end runs are in
test_sandbox.py.
"""

import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from archloop.runner import warm
from archloop.runner.sandbox import layout, seccomp
from archloop.runner.sandbox.identity import Identity

SYSTEM_PYTHON = Path("/usr/bin/python3")
pytestmark = [
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to probe both modes"),
    pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="no system python3 to probe with"),
]
CAP_MB = {"/tmp": 8, "/dev/shm": 8, "/job": 16}
MASKED = "/usr/lib/python3.11/xmlrpc"  # stands in for the base installation's site-packages

PROBE = r'''
import ctypes, errno, json, os, socket, sys, threading
MASKED, PORT = "@MASKED@", int("@PORT@")
libc = ctypes.CDLL(None, use_errno=True)
out = {}

def call(name, *args):
    result = getattr(libc, name)(*args)
    return "ok" if result == 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))

out["unshare_user"] = call("unshare", 0x10000000)
out["unshare_net"] = call("unshare", 0x40000000)
out["unshare_mount"] = call("unshare", 0x00020000)
libc.syscall.restype = ctypes.c_long
out["clone3"] = "ok" if libc.syscall(435, None, 0) >= 0 else errno.errorcode[ctypes.get_errno()]
out["clone_newuser"] = "ok" if libc.syscall(56, 0x10000000 | 17, None, None, None, None) >= 0 else errno.errorcode[ctypes.get_errno()]
out["mount"] = call("mount", b"none", b"/job", b"tmpfs", 0, None)
out["ptrace"] = "ok" if libc.ptrace(16, 1, None, None) == 0 else errno.errorcode[ctypes.get_errno()]
status = dict(l.split(":", 1) for l in open("/proc/self/status"))
out["cap_eff"], out["cap_bnd"] = status["CapEff"].strip(), status["CapBnd"].strip()
out["no_new_privs"], out["seccomp"] = status["NoNewPrivs"].strip(), status["Seccomp"].strip()
out["uid"] = os.getuid()
out["oom_score_adj"] = int(open("/proc/self/oom_score_adj").read())
try:
    with open("/proc/self/oom_score_adj", "w") as handle:
        handle.write("0")
    out["oom_lowered"] = "ok"
except OSError as e:
    out["oom_lowered"] = errno.errorcode.get(e.errno, str(e.errno))
out["pid"] = os.getpid()
out["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
try:
    open("/proc/1/environ").read()
    out["init_environ"] = "read"
except OSError as e:
    out["init_environ"] = errno.errorcode.get(e.errno, str(e.errno))
threads = [threading.Thread(target=lambda: None) for _ in range(4)]
[t.start() for t in threads]; [t.join() for t in threads]
out["threads"] = "ok"
pid = os.fork()
if pid == 0:
    os._exit(0)
out["fork"] = "ok" if os.waitpid(pid, 0)[1] == 0 else "failed"
chunk = b"x" * (1 << 20)

def fill(directory):
    written, error = 0, None
    try:
        for i in range(1024):
            with open(os.path.join(directory, f"fill-{i}"), "wb") as handle:
                handle.write(chunk)
            written += 1
    except OSError as e:
        error = errno.errorcode.get(e.errno, str(e.errno))
    for i in range(written + 1):
        try:
            os.unlink(os.path.join(directory, f"fill-{i}"))
        except OSError:
            pass
    return [written, error]

out["writes"] = {d: fill(d) for d in ["/", "/opt", "/usr", "/dev", "/data", "/etc", "/dev/shm", "/tmp", "/job", MASKED]}
out["masked"] = os.listdir(MASKED)
out["exists"] = {p: os.path.exists(p) for p in ["/usr/share", "/usr/share/datasets", "/usr/bin/python3", "/etc/passwd",
                                              "/usr/bin/setpriv", "/opt/archloop/archloop/runner/inner.py",
                                              "/opt/archloop/archloop/runner/datasets", "/root"]}
s = socket.socket()
s.settimeout(2)
try:
    s.connect(("127.0.0.1", PORT))
    out["loopback"] = "connected"
except OSError as e:
    out["loopback"] = errno.errorcode.get(e.errno, str(e))
print(json.dumps(out))
'''


CAP_SYS_RESOURCE = 24


def _has_capability(number: int) -> bool:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return bool(int(status["CapBnd"].strip(), 16) >> number & 1)


def probe_layout(identity: Identity, seccomp_fd: int, probe: str) -> layout.Layout:
    python = os.path.realpath(SYSTEM_PYTHON)
    interp = layout.Interpreter(python=python, executable=python, venv="/usr/lib/python3.11", stdlib="/usr/lib/python3.11",
                                masked=(MASKED,))
    package = Path(__file__).resolve().parents[2] / "archloop"
    capabilities = warm.ROOT_CAPABILITIES if identity.drop_privileges else warm.USER_CAPABILITIES
    return layout.Layout(interpreter=interp, system_dirs=layout.system_dirs(), package_dir=str(package),
                         data_binds={}, data_fds={}, empty_dirs=(layout.DATA_DIR,), extra_ro_binds=(probe,),
                         identity=identity, seccomp_fd=seccomp_fd,
                         job_dir_bytes=1 << 20, tmp_bytes=1 << 20, shm_bytes=1 << 20,
                         env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONPATH": layout.PACKAGE_ROOT},
                         capabilities=capabilities)


def run_probe(mode: str, directory: Path, port: int) -> dict:
    probe = directory / "probe.py"
    probe.write_text(PROBE.replace("@MASKED@", MASKED).replace("@PORT@", str(port)))
    os.chmod(probe, 0o644)
    outer, strict = os.memfd_create("seccomp-zygote"), os.memfd_create("seccomp")
    for fd, program in ((outer, seccomp.for_machine(zygote=True)), (strict, seccomp.for_machine())):
        os.write(fd, program)
        os.lseek(fd, 0, os.SEEK_SET)
    nobody = pwd.getpwnam("nobody")
    if mode == "root":
        identity = Identity(nobody.pw_uid, nobody.pw_gid, drop_privileges=True, slot=0)
        prefix, ids = [], {"uid": nobody.pw_uid, "gid": nobody.pw_gid}  # the job's slot
    else:  # an ordinary user: bwrap itself runs unprivileged, in a user namespace
        identity = Identity(nobody.pw_uid, nobody.pw_gid, drop_privileges=False)
        prefix, ids = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups", "--"], {}
    job = {"jobBytes": CAP_MB["/job"] << 20, "tmpBytes": CAP_MB["/tmp"] << 20, "shmBytes": CAP_MB["/dev/shm"] << 20, **ids}
    command = [os.path.realpath(SYSTEM_PYTHON), "-s", "-B", "-m", "archloop.runner.zygote", "--probe", str(probe),
               "--probe-job", json.dumps(job), "--seccomp-fd", str(strict), "--kind", "validate",
               "--keep", str(probe)]  # under /tmp: bound again into the candidate's fresh /tmp
    view = probe_layout(identity, outer, str(probe))
    try:
        done = subprocess.run(prefix + layout.bwrap_args(view, command), pass_fds=(outer, strict), capture_output=True,
                              text=True, timeout=120)
    finally:
        os.close(outer)
        os.close(strict)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def shared_dir():
    """A directory the unprivileged probe can read (pytest's own tmp dirs are 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="archloop-probe-"))
    os.chmod(directory, 0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("mode", ["root", "user"])
def test_walls_hold_in_both_modes(mode, shared_dir, listener):
    out = run_probe(mode, shared_dir, listener)
    # No namespaces, mounts or tracing: the seccomp filter the candidate loads (over the
    # zygote's, which allows mount and some namespaces), and bwrap's --disable-userns.
    assert out["unshare_user"] == out["unshare_net"] == out["unshare_mount"] == "EPERM", out
    assert out["clone_newuser"] == "EPERM" and out["clone3"] == "ENOSYS", out
    assert out["mount"] == "EPERM" and out["ptrace"] == "EPERM", out
    assert int(out["cap_eff"], 16) == 0 and int(out["cap_bnd"], 16) == 0 and out["uid"] == pwd.getpwnam("nobody").pw_uid
    assert out["no_new_privs"] == "1" and out["seccomp"] == "2", out
    # Its own PID namespace: init (1) and itself (2); the zygote and other jobs are not there.
    assert out["pid"] == 2 and out["pids"] == [1, 2], out
    assert out["init_environ"] == "EACCES", out
    # The kernel's first choice under memory pressure. A root worker's candidate cannot
    # lower it where root holds CAP_SYS_RESOURCE (its init set it with the capability,
    # which made 1000 the floor); the build VMs' root lacks it, and without root there is
    # no floor: then the job's cgroup is what bounds its memory.
    assert out["oom_score_adj"] == 1000, out
    floor = mode == "root" and _has_capability(CAP_SYS_RESOURCE)
    assert out["oom_lowered"] == ("EACCES" if floor else "ok"), out
    # ...while threads and fork (what torch and Python need) still work.
    assert out["threads"] == "ok" and out["fork"] == "ok"
    # Read-only everywhere but the three size-capped tmpfs.
    for directory in ("/", "/opt", "/usr", "/dev", "/data", "/etc", MASKED):
        assert out["writes"][directory][0] == 0, (directory, out["writes"][directory])
    assert out["masked"] == []  # the base installation's site-packages stays hidden
    for directory, cap in CAP_MB.items():
        written, error = out["writes"][directory]
        assert 0 < written <= cap and error == "ENOSPC", (directory, written, error)
    assert out["exists"] == {"/usr/share": False, "/usr/share/datasets": False, "/usr/bin/python3": False,
                             "/etc/passwd": False, "/usr/bin/setpriv": False,
                             "/opt/archloop/archloop/runner/inner.py": True,
                             "/opt/archloop/archloop/runner/datasets": False, "/root": False}, out["exists"]
    assert out["loopback"] in ("ECONNREFUSED", "ENETUNREACH"), out["loopback"]


def test_seccomp_numbers_match_the_kernel_headers():
    """The hand-written syscall tables against the kernel headers, where installed."""
    import re

    headers = {"x86_64": Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
               "aarch64": Path("/usr/include/asm-generic/unistd.h")}
    checked = 0
    for arch, header in headers.items():
        if not header.exists():
            continue
        pattern = r"#define __NR_(\w+)\s+(\d+)" if arch == "x86_64" else r"#define __NR(?:3264)?_(\w+)\s+(\d+)"
        numbers = {name: int(number) for name, number in re.findall(pattern, header.read_text())}
        for name, number in seccomp.ARCHES[arch].numbers.items():
            assert numbers.get(name) == number, (arch, name, number, numbers.get(name))
            checked += 1
    if not checked:
        pytest.skip("no kernel headers (linux-libc-dev) to check against")


def test_filter_assembles_for_both_architectures_and_refuses_others():
    for machine in ("x86_64", "aarch64"):
        program = seccomp.for_machine(machine)
        assert len(program) % 8 == 0 and 20 < len(program) // 8 < 256
    with pytest.raises(seccomp.UnsupportedArch):
        seccomp.for_machine("riscv64")
