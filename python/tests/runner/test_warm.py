"""The warm path: consecutive candidates forked by one zygote, the pool's policy, the server.

The isolation test runs two hostile programs one after the other in the same zygote: the
first leaves every trace it can (files in its writable places, a daemon that outlives it,
an abstract socket, SysV and POSIX IPC objects, a patched torch, its environment, 32 MiB of
a marked pattern in its memory) and tries to reach the zygote; the second looks for all of
it, and scans its whole writable memory for the first one's pattern.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from .conftest import PYTHON_DIR, SYNTHETIC

# A checkout or venv under /tmp is bound read-only into each candidate's fresh /tmp
# (sandbox/layout.kept_under_tmp): its top directory is there by design, nothing a job left.
BOUND_IN_TMP = {os.path.relpath(path, "/tmp").split(os.sep)[0] for path in (sys.prefix, str(PYTHON_DIR))
                if path.startswith("/tmp/")}


def _left_in_tmp(names: list[str]) -> list[str]:
    return [name for name in names if name not in BOUND_IN_TMP]
from .corpus import SIMPLE
from .test_sandbox import in_init, sbx_processes

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

LEAVE_TRACES = r"""
import ctypes, json, os, socket, time, torch
for place in ('/job', '/tmp', '/dev/shm'):
    open(place + '/first-was-here', 'w').write('secret-of-the-first')
libc = ctypes.CDLL(None, use_errno=True)
segment = libc.shmget(0xA11CE, 4096, 0o1666)
queue = libc.mq_open(b'/first-queue', 0o100 | 0o2, 0o666, None)
listener = socket.socket(socket.AF_UNIX)
listener.bind('\0first-was-here')
listener.listen()
torch.nn.Module.__call__ = lambda self, *a, **k: 'patched by the first'
os.environ['FIRST_WAS_HERE'] = '1'
import numpy
numpy.FIRST_SECRET = 'secret-of-the-first'
page = bytes((i * 7 + 3) % 256 for i in range(4096))
held = bytearray(page * 8192)  # 32 MiB of a page pattern, held while it exits
if os.fork() == 0:  # a daemon that means to outlive its job
    os.setsid()
    if os.fork() == 0:
        while True:
            open('/tmp/daemon-alive', 'w').write(str(time.time()))
            time.sleep(0.2)
    os._exit(0)
reached = {}
try:  # PID 1 of its namespace is the nearest thing to the zygote it can name
    os.kill(1, 9)
    reached[1] = 'killed'
except OSError as error:
    reached[1] = error.errno
try:
    open('/proc/1/mem', 'rb')
    reached['mem'] = 'opened'
except OSError as error:
    reached['mem'] = error.errno
open('/job/report', 'w')
raise RuntimeError('FIRST ' + json.dumps({'pid': os.getpid(), 'pids': sorted(int(p) for p in os.listdir('/proc') if p.isdigit()),
                                          'reached': {str(k): v for k, v in reached.items()}, 'shm': segment, 'mq': queue}))
"""

LOOK_FOR_TRACES = r"""
import ctypes, errno, json, os, socket, torch
found = {}
for place in ('/job', '/tmp', '/dev/shm'):
    found[place] = sorted(os.listdir(place))
found['pids'] = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
libc = ctypes.CDLL(None, use_errno=True)
found['shm'] = libc.shmget(0xA11CE, 0, 0) == -1 and ctypes.get_errno() == errno.ENOENT
found['mq'] = libc.mq_open(b'/first-queue', 0o2) == -1 and ctypes.get_errno() == errno.ENOENT
probe = socket.socket(socket.AF_UNIX)
try:
    probe.connect('\0first-was-here')
    found['socket'] = 'connected'
except OSError as error:
    found['socket'] = errno.errorcode.get(error.errno)
found['torch_patched'] = torch.nn.Module.__call__.__name__ == '<lambda>'
found['environ'] = 'FIRST_WAS_HERE' in os.environ
import numpy
found['numpy'] = hasattr(numpy, 'FIRST_SECRET')
# Its memory: count the first one's page pattern in all of this process's writable memory
# (what a fork of the zygote holds); 1 MiB of a pattern of its own is the control that the
# scan finds what is there.
page = bytes((i * 7 + 3) % 256 for i in range(4096))
control = bytes((i * 11 + 5) % 256 for i in range(4096))
own = bytearray(control) * 256
pages = controls = 0
with open('/proc/self/maps') as maps, open('/proc/self/mem', 'rb', 0) as mem:
    for line in maps:
        span, perms = line.split()[:2]
        start, end = (int(x, 16) for x in span.split('-'))
        if not perms.startswith('rw'):
            continue
        for at in range(start, end, 1 << 24):
            try:
                mem.seek(at)
                chunk = mem.read(min(1 << 24, end - at))
            except OSError:
                break
            pages += chunk.count(page)
            controls += chunk.count(control)
found['pattern_pages'], found['control_pages'] = pages, controls
raise RuntimeError('SECOND ' + json.dumps(found))
"""


def _message_json(result: dict, tag: str) -> dict:
    message = result["failure"]["message"]
    assert tag in message, result["failure"]
    # raw_decode: the runner appends where it failed, " (line N: code)", after the JSON.
    return json.JSONDecoder().raw_decode(message[message.index(tag) + len(tag) + 1:])[0]


@pytest.fixture(scope="module")
def one_zygote_pool():
    from archloop.runner import warm

    pool = warm.Pool(warm.Sizing(jobs={"validate": 1, "train": 1}), warm.package_dir(), lambda *a, **k: None)
    yield pool
    pool.close()


def _job(code: str, **contract):
    from archloop.runner.protocol import JobRequest

    return JobRequest.model_validate({"kind": "validate", "code": code, "dataset": SYNTHETIC,
                                      "contract": {"validateTimeoutS": 30, **contract}, "training": {"threads": 1},
                                      "sandbox": {"auditHook": False}})


def _run(pool, code: str, **contract) -> dict:
    from archloop.runner.job import Job

    result = Job(_job(code, **contract), unsafe_no_sandbox=False, emit=lambda _: None).run(pool)
    return json.loads(result.to_json())


@needs_bwrap
def test_consecutive_hostile_candidates_cannot_reach_each_other(one_zygote_pool):
    first = _run(one_zygote_pool, in_init(LEAVE_TRACES))
    second = _run(one_zygote_pool, in_init(LOOK_FOR_TRACES))
    # the same zygote forked both, one after the other
    assert (first["sandbox"]["zygoteJobs"], second["sandbox"]["zygoteJobs"]) == (0, 1)
    left = _message_json(first, "FIRST")
    assert left["pid"] == 2 and left["shm"] >= 0 and left["mq"] >= 0, left  # it did make its IPC objects
    # all it could see was its own namespace (init, itself, its daemon); init refused it
    assert left["pids"][:2] == [1, 2] and len(left["pids"]) <= 4, left
    assert left["reached"]["mem"] in (1, 13), left  # EPERM, EACCES
    if os.geteuid() == 0:
        assert left["reached"]["1"] == 1, left  # root-owned init: EPERM
    found = _message_json(second, "SECOND")
    assert found["/job"] == ["candidate.py"] and _left_in_tmp(found["/tmp"]) == [] and found["/dev/shm"] == [], found
    assert found["pids"] == [1, 2], found  # the first one's daemon died with its namespace
    assert found["shm"] and found["mq"] and found["socket"] == "ECONNREFUSED", found
    assert not found["torch_patched"] and not found["environ"] and not found["numpy"], found
    # the scan found its own 256 control pages, and of the first one's 8192 only its needle
    assert found["control_pages"] >= 256 and found["pattern_pages"] <= 4, found


HOLD_AND_LOOK = r"""
import ctypes, errno, json, os, socket, time, uuid
mine = uuid.uuid4().hex
for place in ('/job', '/tmp', '/dev/shm'):
    open(place + '/mine-' + mine, 'w').write(mine)
listener = socket.socket(socket.AF_UNIX)
listener.bind('\0held-by-' + mine)
listener.listen()
time.sleep(3)  # the other job runs meanwhile
seen = {place: sorted(os.listdir(place)) for place in ('/job', '/tmp', '/dev/shm')}
seen['pids'] = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
seen['uid'] = os.getuid()
raise RuntimeError('HELD ' + json.dumps(seen))
"""


@needs_bwrap
@pytest.mark.skipif(os.geteuid() != 0, reason="jobs share a zygote only on root workers (slot uids)")
def test_candidates_running_at_once_in_one_zygote_are_apart():
    from archloop.runner import warm

    pool = warm.Pool(warm.Sizing(jobs={"validate": 2, "train": 1}), warm.package_dir(), lambda *a, **k: None)
    try:
        results: list = []
        threads = [threading.Thread(target=lambda: results.append(_run(pool, in_init(HOLD_AND_LOOK)))) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
        assert len(results) == 2
        a, b = (_message_json(result, "HELD") for result in results)
        assert a["uid"] != b["uid"] and {results[0]["sandbox"]["slot"], results[1]["sandbox"]["slot"]} != {None}
        for seen in (a, b):
            assert seen["pids"] == [1, 2], seen
            assert [len(_left_in_tmp(seen["/tmp"])), len(seen["/dev/shm"])] == [1, 1], seen  # its own file only
            assert len([name for name in seen["/job"] if name.startswith("mine-")]) == 1, seen
        # they overlapped in one zygote (its first two jobs), not one after the other
        assert sorted(r["sandbox"]["zygoteJobs"] for r in results) == [0, 1]
        assert abs(results[0]["timings"]["totalS"] - results[1]["timings"]["totalS"]) < 3
    finally:
        pool.close()


@needs_bwrap
def test_a_killed_candidate_leaves_a_working_zygote(one_zygote_pool):
    spinning = _run(one_zygote_pool, in_init("while True:\n    pass"), validateTimeoutS=3)
    assert spinning["failure"]["class"] == "timeout", spinning["failure"]
    after = _run(one_zygote_pool, SIMPLE)
    assert after["ok"], after["failure"]
    assert after["sandbox"]["zygoteJobs"] > spinning["sandbox"]["zygoteJobs"]
    deadline = time.monotonic() + 5
    while any("while True" in line for line in sbx_processes()) and time.monotonic() < deadline:
        time.sleep(0.2)


@needs_bwrap
def test_fork_bomb_does_not_outlive_its_job(one_zygote_pool):
    bomb = in_init("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass")
    result = _run(one_zygote_pool, bomb, validateTimeoutS=5)
    assert result["failure"]["class"] in ("timeout", "sandbox-violation"), result["failure"]
    assert _run(one_zygote_pool, SIMPLE)["ok"]
    assert sbx_processes() == []


# ---- the pool's policy, with stand-in zygotes ------------------------------------------------


class FakeZygote:
    boots = 0

    def __init__(self, plan, capacity: int = 1, fail: bool = False):
        self.plan, self.jobs, self.born, self.healthy = plan, 0, time.monotonic(), True
        self.capacity, self.active = capacity, 0
        self.startup_s, self.threads, self.log_warning = 0.01, 1, None
        self.closed = False
        self.fail = fail
        FakeZygote.boots += 1

    def wait_ready(self, timeout_s):
        from archloop.runner.warm import ZygoteError

        time.sleep(0.05)
        if self.fail:
            raise ZygoteError("bwrap: no permission")
        return 0.05

    def close(self):
        self.closed = True


def _plan(kind="validate"):
    from archloop.runner.warm import Plan

    return Plan(kind=kind, gpu=None, extra_ro_binds=())


def _pool(factory, **sizing):
    from archloop.runner import warm

    return warm.Pool(warm.Sizing(**sizing), "/nowhere", lambda *a, **k: None, factory=factory)


def _jobs(pool, count: int, hold_s: float) -> list:
    """`count` jobs at once, each holding its zygote for hold_s; the zygotes they got."""
    got: list = []

    def job():
        zygote = pool.acquire(_plan())
        got.append(zygote)
        time.sleep(hold_s)
        zygote.jobs += 1
        pool.release(zygote, hold_s)

    threads = [threading.Thread(target=job) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return got


@pytest.mark.parametrize("root", [True, False])
def test_a_backlog_smaller_than_a_boot_shares_one_zygote(root):
    boots = []
    pool = _pool(lambda plan, capacity: boots.append(plan) or FakeZygote(plan, capacity), jobs={"validate": 4, "train": 1},
                 boot_estimate_s=8.0, job_estimate_s=0.5, max_booting=4, root=root)
    try:
        got = _jobs(pool, 6, 0.05)  # 6 jobs of 0.5 s: not worth a second 8 s boot
        assert len(got) == 6 and len(boots) == 1 and len({id(z) for z in got}) == 1
        assert got[0].capacity == (4 if root else 1)
    finally:
        pool.close()


def test_root_runs_a_plans_jobs_in_one_zygote_and_others_boot_one_per_job():
    from archloop.runner.warm import Cancelled

    for root, expected in ((True, 1), (False, 3)):
        boots = []
        pool = _pool(lambda plan, capacity: boots.append(capacity) or FakeZygote(plan, capacity),
                     jobs={"validate": 3, "train": 1}, boot_estimate_s=1.0, job_estimate_s=5.0, max_booting=3, root=root)

        def job():
            try:
                pool.acquire(_plan())
            except Cancelled:  # the pool closes under them
                pass

        try:
            threads = [threading.Thread(target=job, daemon=True) for _ in range(10)]
            for thread in threads:
                thread.start()
            time.sleep(0.5)
            assert len(boots) == expected and set(boots) == {3 if root else 1}
            assert pool.status()["validate:0"]["active"] == 3  # as many jobs as the sizing allows
        finally:
            pool.close()


def test_stock_boots_while_idle_and_is_handed_out_at_once():
    pool = _pool(lambda plan, capacity: FakeZygote(plan, capacity), jobs={"validate": 2, "train": 1}, stock=True,
                 max_booting=2, root=False)
    try:
        pool.prewarm(_plan())
        time.sleep(0.4)
        assert pool.status()["validate:0"]["zygotes"] == 2
        started = time.monotonic()
        pool.acquire(_plan())
        assert time.monotonic() - started < 0.05
    finally:
        pool.close()


def test_prewarm_boots_one_zygote_without_stock():
    pool = _pool(lambda plan, capacity: FakeZygote(plan, capacity), jobs={"validate": 2, "train": 1}, root=False)
    try:
        pool.prewarm(_plan())
        time.sleep(0.3)
        assert pool.status()["validate:0"]["zygotes"] == 1
    finally:
        pool.close()


def test_a_broken_machine_fails_every_waiting_job():
    from archloop.runner.warm import ZygoteError

    pool = _pool(lambda plan, capacity: FakeZygote(plan, capacity, fail=True), jobs={"validate": 1, "train": 1})
    try:
        errors: list = []

        def job():
            try:
                pool.acquire(_plan())
            except ZygoteError as error:
                errors.append(str(error))

        threads = [threading.Thread(target=job) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
        assert errors == ["bwrap: no permission"] * 3
    finally:
        pool.close()


def test_worn_out_or_broken_zygotes_are_retired():
    pool = _pool(lambda plan, capacity: FakeZygote(plan, capacity), jobs={"validate": 1, "train": 1}, max_jobs=2)
    try:
        first = pool.acquire(_plan())
        first.jobs = 2
        pool.release(first, 0.1)
        assert first.closed
        second = pool.acquire(_plan())
        assert second is not first
        second.healthy = False
        pool.release(second, 0.1)
        assert second.closed
    finally:
        pool.close()


def test_a_cancelled_wait_gives_up():
    from archloop.runner.warm import Cancelled

    pool = _pool(lambda plan, capacity: FakeZygote(plan, capacity), jobs={"validate": 1, "train": 1})
    try:
        held = pool.acquire(_plan())
        cancel = threading.Event()
        threading.Timer(0.2, cancel.set).start()
        with pytest.raises(Cancelled):
            pool.acquire(_plan(), cancel)
        pool.release(held, 0.1)
    finally:
        pool.close()


# ---- the server -----------------------------------------------------------------------------


@needs_bwrap
def test_server_runs_jobs_at_once_tags_them_and_cancels():
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ARCHLOOP_DATASETS": os.environ["ARCHLOOP_DATASETS"],
           "PYTHONPATH": str(PYTHON_DIR)}
    server = subprocess.Popen([sys.executable, "-m", "archloop.runner", "serve", "--validate-jobs", "1"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                              cwd=str(PYTHON_DIR))
    request = lambda code, **extra: {"kind": "validate", "code": code, "dataset": SYNTHETIC,  # noqa: E731
                                     "contract": {"validateTimeoutS": 60}, "training": {"threads": 1}, **extra}
    sleeper = in_init("import time\ntime.sleep(600)")
    broken = SIMPLE.replace("return self.head(x)", "return self.head(x)[:, :5]")
    try:
        assert json.loads(server.stdout.readline())["event"] == "hello"
        for command in ({"op": "run", "id": "sleep", "request": request(sleeper)}, {"op": "bogus"},
                        {"op": "run", "id": "good", "request": request(SIMPLE)},
                        {"op": "run", "id": "broken", "request": request(broken)}):
            server.stdin.write(json.dumps(command) + "\n")
        server.stdin.flush()
        ends: dict[str, dict] = {}
        while len(ends) < 3:
            line = json.loads(server.stdout.readline())
            if line["event"] == "progress" and line["id"] == "sleep" and line["stage"] == "ready":
                server.stdin.write(json.dumps({"op": "cancel", "id": "sleep"}) + "\n")
                server.stdin.flush()
            if line["event"] in ("result", "error"):
                ends[line["id"]] = line
        assert ends["sleep"] == {"id": "sleep", "event": "error", "message": "cancelled", "retryable": True}
        assert ends["good"]["result"]["ok"] and ends["broken"]["result"]["failure"]["class"] == "shape"
        # one zygote served all three, the cancelled sleeper first or in between
        assert sorted(e["result"]["sandbox"]["zygoteJobs"] for e in ends.values() if "result" in e) in ([1, 2], [0, 2], [0, 1])
    finally:
        server.stdin.close()
        assert server.wait(timeout=30) == 0
    deadline = time.monotonic() + 5
    while sbx_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sbx_processes() == []


@needs_bwrap
def test_server_boots_a_zygote_on_prewarm_before_any_job():
    """Workers and the CLI send `prewarm` (no job id) so the torch import is done before the
    first candidate comes; a server that refused it would leave every first job to wait."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ARCHLOOP_DATASETS": os.environ["ARCHLOOP_DATASETS"],
           "PYTHONPATH": str(PYTHON_DIR)}
    server = subprocess.Popen([sys.executable, "-m", "archloop.runner", "serve", "--validate-jobs", "1"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                              cwd=str(PYTHON_DIR))
    try:
        assert json.loads(server.stdout.readline())["event"] == "hello"
        server.stdin.write(json.dumps({"op": "prewarm", "kind": "validate", "sandbox": {}}) + "\n")
        server.stdin.flush()
        events = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not {"pool.booted", "serve.bad_command"} & set(events):
            line = server.stderr.readline()
            if not line:
                break
            events.append(json.loads(line)["event"])
        assert "serve.bad_command" not in events and "pool.booted" in events, events
    finally:
        server.stdin.close()
        assert server.wait(timeout=30) == 0
