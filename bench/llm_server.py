"""Embedded LLM server throughput: 8 samples as 8 sequential requests vs one request with n=8,
and time to first token, against a real server process on the converted SmolLM2-135M.

    .venv/bin/python bench/llm_server.py [--threads 2] [--max-tokens 64]

The server does not stream, so time to first token is measured as the latency of a request
for a single new token (prefill plus one decoding step plus HTTP), median of several."""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m-instruct"
PROMPT = [{"role": "user", "content": "Write a PyTorch CNN class for CIFAR-10 images with three conv layers."}]


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=900) as response:
        return json.loads(response.read())


def wait_healthy(url: str, proc: subprocess.Popen) -> float:
    started = time.perf_counter()
    while proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                return time.perf_counter() - started
        except OSError:
            time.sleep(0.2)
    raise SystemExit("server exited")


def chat(url: str, n: int, max_tokens: int, seed: int) -> tuple[int, float]:
    body = {"model": MODEL, "messages": PROMPT, "n": n, "max_tokens": max_tokens, "seed": seed,
            "temperature": 0.7, "top_p": 0.95, "top_k": 100}
    started = time.perf_counter()
    usage = post(url + "/v1/chat/completions", body)["usage"]
    return usage["completion_tokens"], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--port", type=int, default=8799)
    args = parser.parse_args()
    env = os.environ | {"PYTHONPATH": str(REPO / "python")}
    subprocess.run([sys.executable, "-m", "archloop.llm.prepare_model"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{args.port}"
    proc = subprocess.Popen([sys.executable, "-m", "archloop.llm.server", "--port", str(args.port),
                             "--threads", str(args.threads)], env=env, stderr=subprocess.DEVNULL)
    try:
        startup = wait_healthy(url, proc)
        chat(url, 1, 8, 0)  # warm-up
        ttft = statistics.median(chat(url, 1, 1, s)[1] for s in range(5))
        sequential = [chat(url, 1, args.max_tokens, s) for s in range(8)]
        seq_tokens, seq_seconds = sum(t for t, _ in sequential), sum(s for _, s in sequential)
        batch_tokens, batch_seconds = chat(url, 8, args.max_tokens, 0)
    finally:
        proc.terminate()
        proc.wait()
    seq_rate, batch_rate = seq_tokens / seq_seconds, batch_tokens / batch_seconds
    print(json.dumps({
        "threads": args.threads, "maxTokens": args.max_tokens, "startupSeconds": round(startup, 2),
        "timeToFirstTokenSeconds": round(ttft, 3),
        "sequential": {"tokens": seq_tokens, "seconds": round(seq_seconds, 2),
                       "tokensPerSecond": round(seq_rate, 1)},
        "batchedN8": {"tokens": batch_tokens, "seconds": round(batch_seconds, 2),
                      "tokensPerSecond": round(batch_rate, 1)},
        "ratio": round(batch_rate / seq_rate, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
