"""The zygote: an interpreter inside the outer bubblewrap sandbox that imports torch once
and forks one fresh, nested sandbox per candidate.

It never runs candidate code and holds no secret: it imports torch and the runner's
pipelines, warms them up on a built-in net, then waits on its control socket (a
SOCK_SEQPACKET pair with the trusted pool, warm.py). A job message carries the job's
settings (limits, threads, tmpfs sizes, its uid) and its file descriptors: stdin with the
request, stdout, stderr, the event channel, then its data files (read-only: the training
images or split, and for train the test images in this job's secret order, a sealed
memfd). No dataset is in the zygote's own sandbox, so one zygote serves every dataset.
For each job:

    zygote ─fork─▶ monitor: unshare(mount, PID, IPC, net, UTS, cgroup); waits for init
                   └─fork─▶ init (PID 1 of the new namespace): fresh tmpfs on /job, /tmp,
                            /dev/shm, /data (the job's files, read-only), its own /proc;
                            drops every capability; reaps
                            └─fork─▶ candidate (PID 2): the slot's uid (root workers) or no
                                     capabilities (user namespace), no_new_privs, the
                                     seccomp filter, rlimits; reads its request; runs it

The candidate cannot see the zygote or another job (their PIDs are in other namespaces),
reach their files (the outer root is read-only; every job has its own tmpfs), signal or
trace them (another uid or an invisible PID, seccomp; the zygote is not dumpable), or
outlive its job: init is PID 1, so when the candidate ends the kernel kills everything
left in the namespace, and the monitor, which the zygote reports on, ends only after init
has. Jobs may run at once: on root workers each has its own slot uid (the job message
says which), so RLIMIT_NPROC stays per job; without root the pool sends one at a time.
"""

import argparse
import gc
import json
import os
import runpy
import select
import signal
import socket
import sys
import time
from typing import NoReturn

from archloop.runner import inner, lifeline, nest

EVENTS_FD = 3  # where the candidate finds its event channel
EXIT_SETUP = 70  # the nested sandbox could not be built (an infrastructure error)
MAX_MESSAGE = 1 << 16
MAX_FDS = 16  # a job's four streams and its data files
PREPARED_BYTES = 1 << 20  # a prepared sandbox's tmpfs, resized to the job's sizes when it comes


class Config:
    def __init__(self, args: argparse.Namespace, program: bytes):
        self.control_fd: int | None = args.control_fd
        self.keep: list[str] = args.keep
        self.kind: str = args.kind
        self.probe: str | None = args.probe
        self.program = program


def _send(control: socket.socket, payload: dict) -> None:
    control.send(json.dumps(payload, separators=(",", ":")).encode())


def warm_up(kind: str) -> None:
    """Runs the pipelines' torch machinery once on a built-in net (trusted code), so each
    candidate starts from an interpreter where the lazy first uses are done. Single-threaded:
    a fork copies only the calling thread."""
    import torch

    from archloop.runner import graph_ir, meter

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
    x = torch.randn(2, 1, 8, 8)
    model.eval()
    with torch.no_grad():
        model(x)
    graph_ir.build(model, x)
    graph_ir.jit_graph(model, x)
    meter.warm_up()  # the first dispatch mode of a process imports ~1 s of torch
    # Validate jobs too: candidates often call train_setup from __init__, and the first
    # optimizer of a process imports torch._dynamo (2–4 s of instantiate, measured in a demo).
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    if kind == "train":
        loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1]))
        loss.backward()
        optimizer.step()


def _no_helper_threads() -> None:
    """tqdm (which torch.fx pulls in) starts a monitor thread with its first bar; a fork
    copies only the calling thread, so the zygote keeps to one."""
    try:
        import tqdm
    except ImportError:
        return
    tqdm.tqdm.monitor_interval = 0


def thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


def _high(fd: int) -> int:
    """A copy above the fixed numbers, so the dup2s below cannot clobber a source."""
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_DUPFD, 100)


def _receive_job(link: socket.socket) -> tuple[dict, list[int]]:
    """The job (settings and descriptors) a prepared sandbox waits for; exits when it is let go."""
    message, fds, _, _ = socket.recv_fds(link, MAX_MESSAGE, MAX_FDS)
    if not message:
        os._exit(0)
    return json.loads(message), list(fds)


def _candidate(link: socket.socket, config: Config) -> NoReturn:
    """PID 2: waits for its job, then confines itself and runs it."""
    job, fds = _receive_job(link)
    link.close()
    nest.drop_bounding_set()
    if job.get("uid") is not None:  # root workers: this job's slot
        nest.become(int(job["uid"]), int(job["gid"]))
    nest.clear_capabilities()
    nest.no_new_privs()
    nest.die_with_parent()  # after the uid switch, which clears it
    nest.set_dumpable(True)  # its own /proc/self, as a freshly exec'd process has
    high = [_high(fd) for fd in fds[:4]]
    for target, fd in zip((0, 1, 2, EVENTS_FD), high):
        os.dup2(fd, target)
    os.closerange(EVENTS_FD + 1, os.sysconf("SC_OPEN_MAX"))  # 0–3: nothing else
    os.chdir("/job")
    nest.load_seccomp(config.program)
    inner.apply_limits(job["limits"])
    if config.probe is not None:  # the containment test's probe, confined exactly as a candidate
        runpy.run_path(config.probe, run_name="__main__")
        sys.stdout.flush()
        os._exit(0)
    events = inner.Events(EVENTS_FD)
    events.progress("start")
    inner.use_threads(int(job["threads"]))
    events.progress("ready")
    inner.run_request(events)


def _init(link: socket.socket, config: Config) -> NoReturn:
    """PID 1 of the new namespaces: mounts, starts the candidate, waits for the job (then
    sizes the mounts to it and copies its data in), and ends with the candidate."""
    nest.die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # nothing from inside the namespace reaches PID 1
    nest.private_mounts()
    nest.fresh_tmpfs("/tmp", PREPARED_BYTES, keep=config.keep)
    nest.fresh_tmpfs("/job", PREPARED_BYTES)
    nest.fresh_tmpfs("/dev/shm", PREPARED_BYTES)
    nest.fresh_proc()
    nest.oom_first()  # before the fork: the candidate inherits it
    os.chdir("/")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    candidate = os.fork()
    if candidate == 0:
        link.close()
        ours.close()
        _guarded(_candidate, theirs, config)
    theirs.close()
    job, fds = _receive_job(link)
    link.close()
    groups = int(job.get("cgroups", 0))
    nest.join_cgroups(fds[4:4 + groups], (0, candidate))  # before the data: its copy is charged to the job
    for path, key in (("/tmp", "tmpBytes"), ("/job", "jobBytes"), ("/dev/shm", "shmBytes")):
        nest.resize_tmpfs(path, int(job[key]))
    data = [(name, fd, int(size)) for (name, size), fd in zip(job.get("data", []), fds[4 + groups:])]
    nest.data_files("/data", data)  # closes the data descriptors
    socket.send_fds(ours, [json.dumps(job).encode()], fds[:4])
    for fd in fds[:4]:
        os.close(fd)
    ours.close()
    nest.drop_bounding_set()
    nest.clear_capabilities()
    nest.no_new_privs()
    nest.load_seccomp(config.program)
    while True:  # reap whatever re-parents here; end with the candidate
        pid, status = os.wait()
        if pid == candidate:
            os._exit(_exit_code(status))


def _monitor(link: socket.socket, config: Config) -> NoReturn:
    nest.die_with_parent()
    # The zygote's descriptors (its control socket, other jobs' pidfds) stay behind.
    os.closerange(3, link.fileno())
    os.closerange(link.fileno() + 1, os.sysconf("SC_OPEN_MAX"))
    nest.unshare_namespaces()
    init = os.fork()  # the first child in the new PID namespace is its PID 1
    if init == 0:
        _guarded(_init, link, config)
    link.close()
    _, status = os.waitpid(init, 0)
    os._exit(_exit_code(status))


class Prepared:
    """A sandbox forked ahead of its job (monitor, init, candidate: namespaces and mounts
    made, nothing of any job in it), which waits for one job on `link`."""

    def __init__(self, config: Config):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sys.stdout.flush()
        sys.stderr.flush()
        monitor = os.fork()
        if monitor == 0:
            ours.close()
            _guarded(_monitor, theirs, config)
        theirs.close()
        self.monitor, self.link = monitor, ours
        self.watch = os.pidfd_open(monitor)

    def hand(self, message: bytes, fds: list[int]) -> None:
        """Gives it its job (its init copies the data in, its candidate runs the request)."""
        try:
            socket.send_fds(self.link, [message], fds)
        finally:
            for fd in fds:
                os.close(fd)
            self.link.close()


def _guarded(step, *args) -> NoReturn:
    try:
        step(*args)
    except BaseException as error:  # set-up failed: say why on stderr (the job's, once dup'd) and stop
        try:
            os.write(2, f"archloop zygote: {type(error).__name__}: {error}\n".encode())
        finally:
            os._exit(EXIT_SETUP)
    os._exit(EXIT_SETUP)


def _exit_code(status: int) -> int:
    """Like bwrap: the child's exit code, or 128 + the signal that killed it."""
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _reap_orphans() -> None:
    """Reaps what re-parented here (a job's init whose monitor was killed); only while no
    job runs, so no monitor's status is taken from its watcher."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class Running:
    """One job: the monitor of its sandbox (a child of the zygote)."""

    def __init__(self, job_id: str, sandbox: Prepared):
        self.id, self.monitor, self.watch = job_id, sandbox.monitor, sandbox.watch

    def kill(self) -> None:
        """Kills the job's init, so the kernel ends everything in its PID namespace and the
        monitor reaps it; the monitor itself when init is not there yet."""
        try:
            with open(f"/proc/{self.monitor}/task/{self.monitor}/children") as handle:
                children = [int(pid) for pid in handle.read().split()]
        except OSError:
            children = []
        for pid in children or [self.monitor]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _reaped(monitor: int, watch: int) -> int:
    _, status = os.waitpid(monitor, 0)
    os.close(watch)
    return _exit_code(status)


def serve(control: socket.socket, config: Config) -> None:
    """Runs jobs as they come (several at once: each its own namespaces, and on root
    workers its own slot uid), reports each end, and kills them all if the pool goes. One
    sandbox is always prepared ahead, so a job only hands over its settings and files."""
    running: dict[int, Running] = {}  # by pidfd
    spare: Prepared | None = Prepared(config)
    while True:
        watches = [*running, *([spare.watch] if spare else [])]
        readable, _, _ = select.select([control, *watches], [], [])
        if control in readable:
            try:
                message, fds, _, _ = socket.recv_fds(control, MAX_MESSAGE, MAX_FDS)
            except OSError:
                message, fds = b"", []
            if not message:  # the pool has gone: nothing of ours may outlive it
                for job in running.values():
                    job.kill()
                return
            payload = json.loads(message)
            if payload.get("op") == "kill":
                for job in running.values():
                    if job.id == payload.get("id"):
                        job.kill()
            else:
                sandbox, spare = spare or Prepared(config), None
                try:
                    sandbox.hand(message, list(fds))
                except OSError:  # it broke while waiting (its end is reported below like a job's)
                    pass
                job = Running(str(payload["id"]), sandbox)
                running[job.watch] = job
                _send(control, {"event": "started", "id": job.id})
                spare = Prepared(config)  # the next job's, while this one runs
        for watch in [fd for fd in readable if fd in running]:
            job = running.pop(watch)
            _send(control, {"event": "exited", "id": job.id, "code": _reaped(job.monitor, watch)})
        if spare is not None and spare.watch in readable:  # a prepared sandbox failed: say why, prepare again later
            code = _reaped(spare.monitor, spare.watch)
            sys.stderr.write(f"archloop zygote: a prepared sandbox ended ({code}) before its job\n")
            sys.stderr.flush()
            spare = None
        if not running:
            _reap_orphans()


def probe(config: Config, job: dict) -> int:
    """One job on the zygote's own stdio, running config.probe instead of a request
    (python/tests/runner/test_containment.py: the walls of the exact nested sandbox, probed
    with an interpreter that has no torch)."""
    settings = {"limits": "", "threads": 1, "jobBytes": 16 << 20, "tmpBytes": 8 << 20, "shmBytes": 8 << 20, **job}
    sandbox = Prepared(config)
    sandbox.hand(json.dumps(settings).encode(), [os.dup(0), os.dup(1), os.dup(2), os.dup(2)])
    code = _reaped(sandbox.monitor, sandbox.watch)
    _reap_orphans()
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="archloop.runner.zygote")
    parser.add_argument("--control-fd", type=int)
    parser.add_argument("--seccomp-fd", type=int, required=True, help="the filter each candidate loads")
    parser.add_argument("--events-fd", type=int, choices=[EVENTS_FD], default=EVENTS_FD,
                        help="where each candidate finds its event channel (always 3)")
    parser.add_argument("--kind", choices=["validate", "train"], required=True)
    parser.add_argument("--keep", action="append", default=[], help="a read-only bind under /tmp to keep visible")
    parser.add_argument("--probe", help="tests: run this file once as the candidate, torch-free, then exit")
    parser.add_argument("--probe-job", default="{}", help="tests: the probe's job settings (JSON)")
    args = parser.parse_args(argv)
    if (args.control_fd is None) == (args.probe is None):
        parser.error("give either --control-fd (serve jobs) or --probe (run one)")
    started = time.perf_counter()
    lifeline.die_with_parent(None)
    nest.set_dumpable(False)  # nothing of the same uid may read or write this process's memory
    lifeline.become_subreaper()  # a killed monitor's init re-parents here, to be reaped
    with os.fdopen(args.seccomp_fd, "rb") as handle:
        program = handle.read()
    config = Config(args, program)
    if args.probe is not None:
        return probe(config, json.loads(args.probe_job))
    control = socket.socket(fileno=args.control_fd)

    import torch

    from archloop.runner import audit, graph_ir, train, validate  # noqa: F401  (what every candidate uses, imported once)

    torch.set_num_threads(1)
    _no_helper_threads()
    warm_up(args.kind)
    gc.collect()
    gc.freeze()  # what the zygote holds stays out of the children's collections: fewer copied pages
    _send(control, {"event": "ready", "startupS": round(time.perf_counter() - started, 4), "threads": thread_count(),
                    "torchVersion": torch.__version__})
    serve(control, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
