"""Where one cold validation's seconds go (issue 12): each piece of a zygote's boot timed in
a fresh interpreter, as the zygote pays it (python -X importtime for the imports), the
first uses the warm path avoids (FlopCounterMode, fx ShapeProp), then one cold
`archloop validate` (a CLI start, its own zygote boot) with the runner's own timings.

usage: .venv/bin/python bench/sandbox_profile.py [--dataset fashion-mnist] [--program simple]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = str(ROOT / ".venv" / "bin" / "python")
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "python"), "OMP_NUM_THREADS": "1"}

# Each snippet runs after `import torch` in a fresh interpreter; it prints its own seconds.
PIECES = {
    "archloop runner modules (graph_ir, validate, train, audit)":
        "from archloop.runner import audit, graph_ir, train, validate",
    "zygote warm-up (forward, fx + jit trace, shapes; built-in net)":
        "from archloop.runner import zygote; zygote.warm_up('validate')",
    "first FlopCounterMode use (the old FLOPs path)":
        "import torch.utils.flop_counter as f\nwith f.FlopCounterMode(display=False): torch.nn.Linear(4, 4)(torch.randn(1, 4))",
    "first fx ShapeProp use (the old shape path)":
        "import torch.fx\nfrom torch.fx.passes.shape_prop import ShapeProp\n"
        "m = torch.fx.symbolic_trace(torch.nn.Linear(4, 4)); ShapeProp(m).propagate(torch.randn(1, 4))",
}


def timed(snippet: str) -> float:
    code = f"import time, torch\nt = time.perf_counter()\n{snippet}\nprint(time.perf_counter() - t)"
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, env=ENV, check=True).stdout
    return float(out.strip().splitlines()[-1])


def import_torch() -> tuple[float, int]:
    """Wall seconds of `import torch` in a fresh interpreter, and how many modules it imports."""
    proc = subprocess.run([PY, "-X", "importtime", "-c", "import torch"], capture_output=True, text=True, env=ENV, check=True)
    rows = [line for line in proc.stderr.splitlines() if line.startswith("import time:") and "|" in line][1:]
    torch_row = next(line for line in rows if re.search(r"\|\s*torch$", line))
    return int(torch_row.split("|")[1]) / 1e6, len(rows)


def load() -> float:
    return os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--program", default="simple")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "python"))
    from tests.runner.corpus import VALID

    profile: dict = {"load": [round(load(), 2)]}
    seconds, modules = import_torch()
    profile["import torch (cumulative, -X importtime)"] = {"s": round(seconds, 3), "modules": modules}
    for name, snippet in PIECES.items():
        profile[name] = round(timed(snippet), 3)
    started = time.perf_counter()
    subprocess.run([str(ROOT / "bin" / "archloop"), "--help"], capture_output=True, check=True)
    profile["archloop --help (node + tsx + the CLI's modules)"] = round(time.perf_counter() - started, 3)
    with tempfile.TemporaryDirectory() as tmp:
        program = Path(tmp) / f"{args.program}.py"
        program.write_text(VALID[args.program])
        started = time.perf_counter()
        out = subprocess.run([str(ROOT / "bin" / "archloop"), "validate", str(program), "--dataset", args.dataset, "--json"],
                             capture_output=True, text=True, check=True).stdout
        wall = time.perf_counter() - started
    row = json.loads(out)
    timings = row["timings"]["validate"]
    profile["cold archloop validate (one file)"] = {"wallS": round(wall, 3), "status": row["status"], "timings": timings}
    # What the runner does not time: the CLI's own start (node + tsx + modules) and its exit.
    profile["cold archloop validate (one file)"]["outsideRunnerS"] = round(wall - timings["totalS"], 3)
    profile["load"].append(round(load(), 2))
    print(json.dumps(profile, indent=1))


if __name__ == "__main__":
    main()
