"""The sandboxed runner for generated PyTorch programs.

`python -m archloop.runner validate|train` reads one JSON request on stdin, runs the
candidate inside a bubblewrap sandbox as an unprivileged uid, and writes JSON lines on
stdout: progress events while it runs, then exactly one result event. The trusted side
(this process) never imports the candidate; the untrusted side (`inner`) never sees the
test labels, so a program cannot fake its own accuracy.

The sandbox holds only the modules in sandbox/layout.py's INNER_MODULES, under
/opt/archloop on its PYTHONPATH, so `archloop.runner.x` imports resolve there as here.
"""

RUNNER_VERSION = "1"
