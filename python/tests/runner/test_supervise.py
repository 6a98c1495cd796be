"""supervise()'s event-line contract with both halves of issue 20: on_line says False (keep
the line: it may be a result), True (a progress event, consumed) or a Reply (consumed, and
answered on the job's stdin with an earlier deadline)."""

import json
import os
import subprocess
import sys
import textwrap

from archloop.runner.sandbox import supervise

CHILD = textwrap.dedent("""
    import os, sys, time
    events = int(sys.argv[1])
    request = sys.stdin.buffer.readline()
    os.write(events, b'{"event":"progress","stage":"learn"}\\n{"event":"progress","stage":"eval"}\\n')
    answer = sys.stdin.buffer.readline()
    time.sleep(float(sys.argv[2]))
    os.write(events, b'{"event":"result","got":"' + answer.strip() + b'","req":"' + request.strip() + b'"}\\n')
""")


class Child:
    def __init__(self, theirs: supervise.Pipes, sleep_s: float):
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, str(theirs.events), str(sleep_s)],
                                     stdin=theirs.stdin, stdout=theirs.stdout, stderr=theirs.stderr,
                                     pass_fds=(theirs.events,))
        self.end_fd = os.pidfd_open(self.proc.pid)

    def ended(self):
        return self.proc.poll()

    def kill(self):
        self.proc.kill()


def _run(sleep_s: float, limit_s: float):
    ours, theirs = supervise.pipes()
    child = Child(theirs, sleep_s)
    supervise.close(theirs)
    seen = []

    def on_line(line: bytes):
        event = json.loads(line)
        seen.append(event.get("stage", event["event"]))
        if event["event"] != "progress":
            return False
        return supervise.Reply(b"images\n", limit_s) if event["stage"] == "eval" else True

    try:
        return supervise.supervise(child, ours, b"req\n", 60.0, 4096, 1 << 20, on_line), seen
    finally:
        child.kill()
        child.proc.wait()
        os.close(child.end_fd)


def test_progress_is_consumed_and_a_reply_is_written_to_stdin():
    outcome, seen = _run(sleep_s=0.0, limit_s=30.0)
    assert seen == ["learn", "eval", "result"]
    assert not outcome.timed_out and outcome.returncode == 0, outcome.stderr.text()
    assert outcome.events_lines == 3
    assert [json.loads(line) for line in outcome.lines] == [{"event": "result", "got": "images", "req": "req"}]


def test_a_reply_brings_the_deadline_closer():
    outcome, _ = _run(sleep_s=30.0, limit_s=0.5)
    assert outcome.timed_out and outcome.wall_s < 20 and outcome.lines == []
