"""The zygote: an interpreter inside the outer bubblewrap sandbox that imports torch once
and forks one fresh, nested sandbox per candidate.

It never runs candidate code and holds no secret: it imports torch and the runner's
pipelines, warms them up on a built-in net, then waits on its control socket (a
SOCK_SEQPACKET pair with the trusted pool, warm.py). A job message carries the job's
settings (limits, threads, tmpfs sizes) and its file descriptors (stdin with the request,
stdout, stderr, the event channel, and for train a sealed memfd with the test images in
this job's secret order). For each job:

    zygote ─fork─▶ monitor: unshare(mount, PID, IPC, net, UTS, cgroup); waits for init
                   └─fork─▶ init (PID 1 of the new namespace): fresh tmpfs on /job, /tmp,
                            /dev/shm, its own /proc; drops every capability; reaps
                            └─fork─▶ candidate (PID 2): the slot's uid (root workers) or no
                                     capabilities (user namespace), no_new_privs, the
                                     seccomp filter, rlimits; reads its request; runs it

The candidate cannot see the zygote (another PID namespace), reach its files (the outer
root is read-only, its tmpfs are covered by fresh ones), signal or trace it (another uid
or an invisible PID, seccomp, the zygote is not dumpable), or outlive its job: init is
PID 1, so when the candidate ends the kernel kills everything left in the namespace, and
the zygote reports the end only once every process of the job has been reaped. Only one
job runs in a zygote at a time.
"""
from __future__ import annotations

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
from typing import NoReturn, Optional

from . import inner, lifeline, nest

EVENTS_FD = 3  # where the candidate finds its event channel
TEST_IMAGES_FD = 4  # train: the test images, in this job's secret order (read as /proc/self/fd/4)
EXIT_SETUP = 70  # the nested sandbox could not be built (an infrastructure error)
MAX_MESSAGE = 1 << 16
REAP_WAIT_S = 30.0


class Config:
    def __init__(self, args: argparse.Namespace, program: bytes):
        self.control_fd: Optional[int] = args.control_fd
        self.uid: Optional[int] = args.uid
        self.gid: Optional[int] = args.gid
        self.keep: list[str] = args.keep
        self.kind: str = args.kind
        self.probe: Optional[str] = args.probe
        self.program = program


def _send(control: socket.socket, payload: dict) -> None:
    control.send(json.dumps(payload, separators=(",", ":")).encode())


def warm_up(kind: str) -> None:
    """Runs the pipelines' torch machinery once on a built-in net (trusted code), so each
    candidate starts from an interpreter where the lazy first uses are done. Single-threaded:
    a fork copies only the calling thread."""
    import torch

    from . import graph_ir

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
    x = torch.randn(2, 1, 8, 8)
    model.eval()
    with torch.no_grad():
        model(x)
    graph_ir.build(model, x)
    graph_ir.jit_graph(model, x)
    if kind == "train":
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
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


def _candidate(job: dict, fds: list[int], config: Config) -> NoReturn:
    nest.drop_bounding_set()
    if config.uid is not None:
        nest.become(config.uid, config.gid if config.gid is not None else config.uid)
    nest.clear_capabilities()
    nest.no_new_privs()
    nest.die_with_parent()  # after the uid switch, which clears it
    nest.set_dumpable(True)  # its own /proc/self, as a freshly exec'd process has
    high = [_high(fd) for fd in fds]
    for target, fd in zip((0, 1, 2, EVENTS_FD, TEST_IMAGES_FD), high):
        os.dup2(fd, target)
    os.closerange(len(high), os.sysconf("SC_OPEN_MAX"))  # 0–3, and 4 for train: nothing else
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


def _init(job: dict, fds: list[int], config: Config) -> NoReturn:
    """PID 1 of the job's namespaces: builds its mounts, starts the candidate, and ends with it."""
    nest.die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # nothing from inside the namespace reaches PID 1
    nest.private_mounts()
    nest.fresh_tmpfs("/tmp", int(job["tmpBytes"]), keep=config.keep)
    nest.fresh_tmpfs("/job", int(job["jobBytes"]))
    nest.fresh_tmpfs("/dev/shm", int(job["shmBytes"]))
    nest.fresh_proc()
    os.chdir("/")
    candidate = os.fork()
    if candidate == 0:
        _guarded(_candidate, job, fds, config)
    for fd in fds:
        os.close(fd)
    nest.drop_bounding_set()
    nest.clear_capabilities()
    nest.no_new_privs()
    nest.load_seccomp(config.program)
    while True:  # reap whatever re-parents here; end with the candidate
        pid, status = os.wait()
        if pid == candidate:
            os._exit(_exit_code(status))


def _monitor(job: dict, fds: list[int], config: Config) -> NoReturn:
    nest.die_with_parent()
    if config.control_fd is not None:
        os.close(config.control_fd)
    nest.unshare_namespaces()
    init = os.fork()  # the first child in the new PID namespace is its PID 1
    if init == 0:
        _guarded(_init, job, fds, config)
    for fd in fds:
        os.close(fd)
    _, status = os.waitpid(init, 0)
    os._exit(_exit_code(status))


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


def _reap_all(deadline_s: float) -> bool:
    """Waits until no child is left (a killed monitor's init re-parents here); False on timeout."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid == 0:
            time.sleep(0.01)
    return False


def run_job(control: socket.socket, job: dict, fds: list[int], config: Config) -> bool:
    """Forks the job's sandbox, reports its end; False when the pool has gone away."""
    sys.stdout.flush()
    sys.stderr.flush()
    monitor = os.fork()
    if monitor == 0:
        _guarded(_monitor, job, fds, config)
    for fd in fds:
        os.close(fd)
    _send(control, {"event": "started"})
    watch = os.pidfd_open(monitor)
    status: Optional[int] = None
    connected = True
    try:
        while status is None:
            readable, _, _ = select.select([control, watch], [], [])
            if control in readable:
                message = control.recv(MAX_MESSAGE)
                if not message or json.loads(message).get("op") == "kill":
                    connected = connected and bool(message)
                    os.kill(monitor, signal.SIGKILL)
            if watch in readable:
                _, raw = os.waitpid(monitor, 0)
                status = _exit_code(raw)
    finally:
        os.close(watch)
    clean = _reap_all(REAP_WAIT_S)
    if connected:
        _send(control, {"event": "exited", "code": status, "clean": clean})
    return connected and clean


def probe(config: Config, job: dict) -> int:
    """One job on the zygote's own stdio, running config.probe instead of a request
    (python/tests/runner/test_containment.py: the walls of the exact nested sandbox, probed
    with an interpreter that has no torch)."""
    settings = {"limits": "", "threads": 1, "jobBytes": 16 << 20, "tmpBytes": 8 << 20, "shmBytes": 8 << 20, **job}
    fds = [os.dup(0), os.dup(1), os.dup(2), os.dup(2)]
    sys.stdout.flush()
    monitor = os.fork()
    if monitor == 0:
        _guarded(_monitor, settings, fds, config)
    for fd in fds:
        os.close(fd)
    _, status = os.waitpid(monitor, 0)
    _reap_all(REAP_WAIT_S)
    return _exit_code(status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="archloop.runner.zygote")
    parser.add_argument("--control-fd", type=int)
    parser.add_argument("--seccomp-fd", type=int, required=True, help="the filter each candidate loads")
    parser.add_argument("--events-fd", type=int, choices=[EVENTS_FD], default=EVENTS_FD,
                        help="where each candidate finds its event channel (always 3)")
    parser.add_argument("--kind", choices=["validate", "train"], required=True)
    parser.add_argument("--uid", type=int, help="root workers: the slot's uid each candidate runs as")
    parser.add_argument("--gid", type=int)
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

    from . import audit, graph_ir, train, validate  # noqa: F401  (what every candidate uses, imported once)

    torch.set_num_threads(1)
    _no_helper_threads()
    warm_up(args.kind)
    gc.collect()
    gc.freeze()  # what the zygote holds stays out of the children's collections: fewer copied pages
    _send(control, {"event": "ready", "startupS": round(time.perf_counter() - started, 4), "threads": thread_count(),
                    "torchVersion": torch.__version__})
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, MAX_MESSAGE, 8)
        except OSError:
            return 0
        if not message:
            return 0
        if not run_job(control, json.loads(message), list(fds), config):
            return 0


if __name__ == "__main__":
    sys.exit(main())
