"""Hostile programs through the real CLI and bubblewrap; the host is checked afterwards.

Most jobs run with the audit hook OFF, so what is tested is the sandbox itself (namespaces,
read-only root, uid, rlimits, wall clock); a second set runs with the hook ON and checks
the precise `sandbox-violation` messages.
"""

import errno
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import PYTHON_DIR, SYNTHETIC, run_cli
from .corpus import FLAT, SIMPLE

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

TOKEN = uuid.uuid4().hex[:12]
SECRET = f"secret-{TOKEN}"
REPO = Path(__file__).resolve().parents[3]
HOST_PATHS = [Path(f"/tmp/archloop-pwned-{TOKEN}"), REPO / f"archloop-pwned-{TOKEN}", Path(f"/root/archloop-pwned-{TOKEN}"),
              Path(f"/home/archloop-pwned-{TOKEN}")]
SECRET_FILES = [Path(f"/tmp/archloop-secret-{TOKEN}"), Path(f"/root/archloop-secret-{TOKEN}")]
NO_HOOK = {"auditHook": False}


def in_init(code: str) -> str:
    body = "".join(f"        {line}\n" for line in code.strip().splitlines())
    return SIMPLE.replace("        self.device = device\n", "        self.device = device\n" + body, 1)


def in_forward(code: str) -> str:
    body = "".join(f"        {line}\n" for line in code.strip().splitlines())
    return SIMPLE.replace("    def forward(self, x):\n", "    def forward(self, x):\n" + body, 1)


def in_learn(code: str) -> str:
    body = "".join(f"        {line}\n" for line in code.strip().splitlines())
    return SIMPLE.replace("    def learn(self, train_data):\n", "    def learn(self, train_data):\n" + body, 1)


class LoopbackServer:
    """A TCP server on the host's loopback that counts connections."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
                self.accepted += 1
                conn.close()
            except OSError:
                pass


def hostile_programs(port: int) -> dict[str, tuple[str, str, dict]]:
    """name -> (kind, code, run options)."""
    writes = "\n".join(f"open({str(p)!r}, 'w').write('pwned')" for p in HOST_PATHS)
    reads = "\n".join(
        f"found.append(open({str(p)!r}).read()) if os.path.exists({str(p)!r}) else None" for p in SECRET_FILES)
    return {
        "net_by_name": ("validate", in_init("import socket\nsocket.create_connection(('example.com', 80), timeout=3)"), {}),
        "net_by_ip": ("validate", in_init("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=3)"), {}),
        "net_loopback": ("validate", in_init(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)"), {}),
        "write_outside": ("validate", in_init(writes), {}),
        "read_env": ("validate", in_init(
            "import os\nleak = dict(os.environ)\n"
            "for p in ('/proc/1/environ', '/proc/self/environ'):\n"
            "    try:\n        leak[p] = open(p).read()\n    except OSError as e:\n        leak[p] = str(e)\n"
            "raise RuntimeError(repr(leak))"), {}),
        "read_files": ("validate", in_init(
            "import os\nfound = []\n" + reads + "\n"
            f"for p in ({str(REPO / 'package.json')!r}, '/root/.bash_history', '/etc/shadow', '/etc/passwd'):\n"
            "    try:\n        found.append(open(p).read())\n    except OSError as e:\n        found.append(str(e))\n"
            "raise RuntimeError(repr(found))"), {}),
        "memory_bomb": ("validate", in_init("blocks = []\nwhile True:\n    blocks.append(bytearray(64 * 2**20))"),
                        {"contract": {"memoryLimitMb": 512}}),
        "spin_init": ("validate", in_init("while True:\n    pass"), {"contract": {"validateTimeoutS": 6}}),
        "spin_forward": ("validate", in_forward("while True:\n    pass"), {"contract": {"validateTimeoutS": 6}}),
        "spin_learn": ("train", in_learn("while True:\n    pass"), {"training": {"timeLimitS": 1}, "sandbox": {"graceS": 6}}),
        "sleep_forever": ("validate", in_init("import time\ntime.sleep(10**6)"), {"contract": {"validateTimeoutS": 6}}),
        "flood_stdout": ("validate", in_init("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)"), {}),
        "subprocess": ("validate", in_init(
            f"import subprocess\nsubprocess.run(['/bin/sh', '-c', 'echo pwned > {HOST_PATHS[1]}'], check=True)"), {}),
        "os_system": ("validate", in_init(
            f"import os\nrc = os.system('echo pwned > {HOST_PATHS[2]}')\nraise PermissionError(13, f'system rc {{rc}}')"), {}),
        "kill_parent": ("validate", in_init("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(1, signal.SIGKILL)"), {}),
        "ctypes": ("validate", in_init(
            "import ctypes\nlibc = ctypes.CDLL('libc.so.6')\n"
            "libc.system(b'echo pwned > /root/archloop-ctypes')\n"
            "if libc.setuid(0) != 0:\n    raise PermissionError(1, 'setuid(0) refused')"), {}),
        "big_file": ("validate", in_init("open('/job/big', 'wb').write(b'0' * (200 * 2**20))"), {}),
        "crash": ("validate", in_init("import os\nos._exit(3)"), {}),
        "userns": ("validate", in_init(
            "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "if libc.unshare(0x10000000) != 0:\n    raise PermissionError(ctypes.get_errno(), 'unshare(CLONE_NEWUSER) refused')\n"
            "raise RuntimeError('created a user namespace')"), {}),
        "fill_tmp": ("validate", in_init(
            "for i in range(1000):\n    open(f'/tmp/fill-{i}', 'wb').write(b'0' * 2**24)"), {}),
        "fill_shm": ("validate", in_init(
            "for i in range(1000):\n    open(f'/dev/shm/fill-{i}', 'wb').write(b'0' * 2**24)"), {}),
        "write_root": ("validate", in_init("open('/pwned', 'w').write('x')"), {}),
    }


EXPECTED = {
    "net_by_name": "sandbox-violation", "net_by_ip": "sandbox-violation", "net_loopback": "sandbox-violation",
    "write_outside": "sandbox-violation", "read_env": "instantiate", "read_files": "instantiate",
    "memory_bomb": "oom", "spin_init": "timeout", "spin_forward": "timeout", "spin_learn": "timeout",
    "sleep_forever": "timeout", "flood_stdout": "sandbox-violation", "subprocess": "instantiate",
    "os_system": "sandbox-violation", "kill_parent": "sandbox-violation", "ctypes": "sandbox-violation",
    "big_file": "sandbox-violation", "crash": "crash", "userns": "sandbox-violation", "fill_tmp": "sandbox-violation",
    "fill_shm": "sandbox-violation", "write_root": "sandbox-violation",
}
HOOKED = {  # audit hook on: the precise event in the message
    "subprocess": "subprocess.Popen", "os_system": "os.system", "ctypes": "ctypes.dlopen",
    "net_by_ip": "socket.getaddrinfo", "kill_parent": "os.kill",
}


def _run(kind, code, options, sandbox):
    return run_cli(kind, code, sandbox={**sandbox, **options.get("sandbox", {})}, contract=options.get("contract"),
                   training=options.get("training"), env_extra={"ARCHLOOP_TEST_SECRET": SECRET})


def slot_uids() -> list[int]:
    return [entry.pw_uid for entry in pwd.getpwall() if entry.pw_name.startswith("archloop-sbx-")]


def sbx_processes() -> list[str]:
    """Processes of any sandbox slot user started from this checkout's interpreter (other
    checkouts on the machine share the slot users)."""
    uids = slot_uids()
    if not uids:
        return []
    out = subprocess.run(["ps", "-o", "pid=,args=", "-U", ",".join(map(str, uids))], capture_output=True, text=True).stdout
    ours = os.path.normpath(sys.executable)
    return [line for line in out.splitlines() if ours in line]


@pytest.fixture(scope="module")
def hostile_results():
    for path in SECRET_FILES:
        path.write_text(SECRET)
    server = LoopbackServer()
    programs = hostile_programs(server.port)
    jobs = {name: (kind, code, opts, NO_HOOK) for name, (kind, code, opts) in programs.items()}
    jobs.update({f"hooked_{name}": (programs[name][0], programs[name][1], programs[name][2], {"auditHook": True})
                 for name in HOOKED})
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = {name: pool.submit(_run, *job) for name, job in jobs.items()}
            results = {name: future.result() for name, future in futures.items()}
        results.update(fork_bomb_beside_a_busy_job())
        yield {"results": results, "server": server, "elapsed": time.monotonic() - started}
    finally:
        server.stop = True
        for path in SECRET_FILES:
            path.unlink(missing_ok=True)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_program_is_contained_and_classified(name, hostile_results):
    result, _, proc = hostile_results["results"][name]
    assert "error" not in result, result
    assert not result["ok"]
    assert result["failure"]["class"] == EXPECTED[name], (result["failure"], result["logs"]["stderr"][-500:])
    assert SECRET not in proc.stdout and SECRET not in proc.stderr


@pytest.mark.parametrize("name", sorted(HOOKED))
def test_audit_hook_names_the_forbidden_operation(name, hostile_results):
    result, _, _ = hostile_results["results"][f"hooked_{name}"]
    assert result["failure"]["class"] == "sandbox-violation", result["failure"]
    assert HOOKED[name] in result["failure"]["message"]


FORK_BOMB = in_init("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass")
# 32 threads at a time, again and again for ~8 s: fails at once if its uid's process budget is gone.
THREADS = in_init("import threading, time\nend = time.time() + 8\nwhile time.time() < end:\n"
                  "    pool = [threading.Thread(target=time.sleep, args=(0.2,)) for _ in range(32)]\n"
                  "    [t.start() for t in pool]\n    [t.join() for t in pool]")


def fork_bomb_beside_a_busy_job() -> dict:
    """A fork bomb and, started beside it, a job that needs many threads: each has its own
    slot uid, so the bomb exhausts only its own RLIMIT_NPROC budget."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        bomb = pool.submit(_run, "validate", FORK_BOMB, {"contract": {"validateTimeoutS": 20}}, NO_HOOK)
        time.sleep(1.0)
        busy = pool.submit(_run, "validate", THREADS, {"contract": {"validateTimeoutS": 60}}, NO_HOOK)
        return {"fork_bomb": bomb.result(), "beside_fork_bomb": busy.result()}


def test_fork_bomb_is_contained_to_its_own_slot(hostile_results):
    bomb, _, _ = hostile_results["results"]["fork_bomb"]
    assert bomb["failure"]["class"] in {"timeout", "sandbox-violation"}, bomb["failure"]
    assert bomb["timings"]["sandboxS"] < 40
    busy, _, _ = hostile_results["results"]["beside_fork_bomb"]
    assert busy["ok"], (busy["failure"], busy["logs"]["stderr"][-1000:])
    assert busy["sandbox"]["slot"] != bomb["sandbox"]["slot"]
    assert busy["sandbox"]["uid"] != bomb["sandbox"]["uid"]


def test_host_is_untouched(hostile_results):
    for path in [*HOST_PATHS, Path("/root/archloop-ctypes")]:
        assert not path.exists(), f"{path} was written from the sandbox"
    assert hostile_results["server"].accepted == 0
    deadline = time.monotonic() + 5
    while sbx_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sbx_processes() == []


def test_environment_and_files_do_not_leak(hostile_results):
    env_result = hostile_results["results"]["read_env"][0]
    message = env_result["failure"]["message"]
    assert "ARCHLOOP_TEST_SECRET" not in message and "ARCHLOOP_DATASETS" not in message
    assert "PYTHONPATH" in message  # the program did read its (clean) environment
    assert "Permission denied" in message  # /proc/1/environ belongs to the sandbox's root-owned init
    files_message = hostile_results["results"]["read_files"][0]["failure"]["message"]
    assert '"name": "archloop"' not in files_message and "No such file" in files_message


def test_limits_reported(hostile_results):
    result, _, _ = hostile_results["results"]["crash"]
    sandbox = result["sandbox"]
    assert sandbox["mode"] == "bwrap" and sandbox["seccomp"] is True
    assert pwd.getpwuid(sandbox["uid"]).pw_name == f"archloop-sbx-{sandbox['slot']}"
    assert sandbox["nproc"] == 64 and sandbox["addressSpaceMb"] == 4096 + 4096
    assert "exited with code 3" in result["failure"]["message"]


def test_flood_is_capped(hostile_results):
    result, _, proc = hostile_results["results"]["flood_stdout"]
    assert len(result["logs"]["stdout"]) <= 16_384
    assert result["logs"]["truncatedBytes"] > 0
    assert len(proc.stdout) < 200_000


def test_sandboxed_validate_and_train_end_to_end():
    result, progress, _ = run_cli("validate", SIMPLE)
    assert result["ok"], result["failure"]
    assert result["structuralHash"] and result["graph"]["method"] == "fx"
    # while its zygote boots the job is `queued` (every 5 s); then its sandbox's own stages
    stages = [p["stage"] for p in progress]
    assert stages[stages.count("queued"):][:2] == ["start", "ready"] and set(stages[:stages.count("queued")]) <= {"queued"}
    trained, progress, _ = run_cli("train", SIMPLE)
    assert trained["ok"], trained["failure"]
    assert trained["accuracy"] > 0.3 and trained["testSize"] == 512 and trained["correct"] > 150
    assert trained["trainImages"] == 2048 and trained["device"] == "cpu"
    assert any(p["stage"] == "learn" for p in progress)


def test_a_resized_dataset_reaches_the_sandboxed_network():
    """dataset.resize travels in the request: Net is built for (B, 3, 64, 64) and the result says so."""
    result, _, _ = run_cli("validate", FLAT, dataset={**SYNTHETIC, "resize": 64})
    assert result["ok"], result["failure"]
    assert result["dataset"]["inputShape"] == [3, 64, 64] and result["params"] == 3 * 64 * 64 * 10 + 10


def test_data_dir_holds_only_what_the_job_needs():
    """validate: the batch it forwards; train: the training images the run gives
    (maxTrainImages), never the test images (they come after learn) nor labels beyond
    those. Read-only either way."""
    code = in_init(
        "import os, numpy as np\n"
        "seen = [(name, np.load('/data/' + name, mmap_mode='r').shape[0]) for name in sorted(os.listdir('/data'))]\n"
        "try:\n    open('/data/x', 'w')\nexcept OSError as e:\n    seen.append(e.errno)\n"
        "raise RuntimeError(repr(seen))")
    validated, _, _ = run_cli("validate", code, sandbox=NO_HOOK)
    assert f"[('train_x.npy', 2), {errno.EROFS}]" in validated["failure"]["message"], validated["failure"]
    trained, _, _ = run_cli("train", code, sandbox=NO_HOOK)
    assert f"[('train_x.npy', 2048), ('train_y.npy', 2048), {errno.EROFS}]" in trained["failure"]["message"], trained["failure"]
    given, _, _ = run_cli("train", code, sandbox=NO_HOOK, training={"maxTrainImages": 300})
    assert f"[('train_x.npy', 300), ('train_y.npy', 300), {errno.EROFS}]" in given["failure"]["message"], given["failure"]


def test_refuses_without_bwrap_unless_unsafe(tmp_path):
    (tmp_path / "bin").mkdir()
    for tool in ("setpriv", "useradd"):
        if shutil.which(tool):
            (tmp_path / "bin" / tool).symlink_to(shutil.which(tool))
    path = {"PATH": str(tmp_path / "bin")}
    result, _, proc = run_cli("validate", SIMPLE, env_extra=path)
    assert proc.returncode == 3 and "bubblewrap" in result["error"]
    refused, _, proc = run_cli("validate", SIMPLE, env_extra=path, extra_args=["--unsafe-no-sandbox"])
    assert proc.returncode == 3 and "ARCHLOOP_ALLOW_UNSAFE=1" in refused["error"]
    unsafe, _, proc = run_cli("validate", SIMPLE, env_extra={**path, "ARCHLOOP_ALLOW_UNSAFE": "1"},
                              extra_args=["--unsafe-no-sandbox"])
    assert unsafe["ok"] and unsafe["sandbox"]["mode"] == "none"
    assert unsafe["warnings"][0].startswith("UNSAFE") and '"level": "error"' in proc.stderr


def test_unsafe_mode_kills_escaped_descendants(tmp_path):
    """Without bwrap there is no PID namespace: a setsid'd grandchild must still die with the job."""
    pid_file = tmp_path / "orphan.pid"
    code = in_init(
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "        time.sleep(600)\n"
        "    os._exit(0)\n"
        "time.sleep(1)\n"
        "raise RuntimeError('parent done')")
    result, _, _ = run_cli("validate", code, sandbox=NO_HOOK, extra_args=["--unsafe-no-sandbox"],
                           env_extra={"ARCHLOOP_ALLOW_UNSAFE": "1"})
    assert result["failure"]["class"] == "instantiate", result["failure"]
    orphan = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(orphan) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(orphan), f"grandchild {orphan} outlived the job"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] if Path(f"/proc/{pid}/stat").exists() else "X"
    return state not in ("Z", "X")


def test_runner_and_sandbox_die_with_the_worker(tmp_path):
    """The worker spawns the runner in its own process group; when the worker is SIGKILLed the
    runner's parent-death signal takes it (and so bwrap and the sandbox) down too."""
    sleeper = in_init("import time\ntime.sleep(600)")
    request = json.dumps({"kind": "validate", "code": sleeper, "dataset": SYNTHETIC, "contract": {"validateTimeoutS": 300}})
    worker = (
        "import os, subprocess, sys, time\n"
        "env = dict(os.environ, ARCHLOOP_PARENT_PID=str(os.getpid()))\n"
        "runner = subprocess.Popen([sys.executable, '-m', 'archloop.runner', 'validate'], stdin=subprocess.PIPE,\n"
        "                          stdout=subprocess.DEVNULL, start_new_session=True, env=env)\n"
        "runner.stdin.write(sys.argv[1].encode()); runner.stdin.close()\n"
        "print(runner.pid, flush=True)\n"
        "time.sleep(600)\n")
    env = {"PATH": os.environ["PATH"], "ARCHLOOP_DATASETS": os.environ["ARCHLOOP_DATASETS"], "PYTHONPATH": str(PYTHON_DIR)}
    parent = subprocess.Popen([sys.executable, "-c", worker, request], stdout=subprocess.PIPE, text=True, env=env,
                              cwd=str(PYTHON_DIR))
    runner_pid = int(parent.stdout.readline())
    deadline = time.monotonic() + 120
    while not _sleeping_in_sandbox() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _sleeping_in_sandbox(), "the sandbox never started"
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while (_alive(runner_pid) or _sleeping_in_sandbox()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(runner_pid), "the runner outlived its worker"
    assert not _sleeping_in_sandbox(), sbx_processes()


def _sleeping_in_sandbox() -> bool:
    """A candidate process: forked by a zygote, it carries the zygote's command line."""
    return any("archloop.runner.zygote" in line for line in sbx_processes())


def test_runs_from_a_venv_and_checkout_under_tmp():
    """A clone under /tmp: the venv's and package's parents are created inside the sandbox's
    own /tmp (once: `Can't make symlink at /tmp: File exists`)."""
    root = Path(tempfile.mkdtemp(prefix="archloop-tmp-checkout-", dir="/tmp"))
    try:
        os.chmod(root, 0o755)
        venv = Path(sys.prefix)
        if subprocess.run(["cp", "-al", str(venv), str(root / "venv")], capture_output=True).returncode != 0:
            pytest.skip("cannot hard-link the venv into /tmp (another file system)")
        shutil.copytree(PYTHON_DIR / "archloop", root / "python" / "archloop")
        python = root / "venv" / "bin" / "python"
        result, _, proc = run_cli("validate", SIMPLE, python=str(python), cwd=root / "python",
                                  env_extra={"PYTHONPATH": str(root / "python")})
        assert "error" not in result, result
        assert result["ok"], (result["failure"], result["logs"]["stderr"][-2000:])
        assert result["sandbox"]["mode"] == "bwrap"
    finally:
        shutil.rmtree(root, ignore_errors=True)
