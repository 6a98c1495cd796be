"""Fixtures for the LLM tests: a tiny random llama built here (no hub), the converted
SmolLM2 checkpoint (converted once, cached under ARCHLOOP_HOME), and real server processes."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[2]
ENV = os.environ | {"PYTHONPATH": str(PYTHON_DIR), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                    "OMP_NUM_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: dict | bytes | None = None, timeout: float = 300) -> tuple[int, object]:
    """(status, parsed JSON or text) for a request; HTTP errors are returned, not raised."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read().decode()
    try:
        return status, json.loads(raw)
    except json.JSONDecodeError:
        return status, raw


class Server:
    def __init__(self, model_dir: Path, adapters_dir: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        cmd = [sys.executable, "-m", "archloop.llm.server", "--host", "127.0.0.1", "--port", str(self.port),
               "--model-dir", str(model_dir), "--threads", "1", "--adapters-dir", str(adapters_dir)]
        self.proc = subprocess.Popen(cmd, env=ENV, stdout=log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
            try:
                if http("GET", self.url + "/health", timeout=2)[0] == 200:
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"server did not become healthy: {log.read_text()[-2000:]}")

    def post(self, path: str, body) -> tuple[int, object]:
        return http("POST", self.url + path, body)

    def get(self, path: str) -> tuple[int, object]:
        return http("GET", self.url + path)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from archloop.llm.synthetic import save_synthetic

    return save_synthetic(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def smollm_dir() -> Path:
    from archloop.llm.env import default_model_dir, force_offline
    from archloop.llm.prepare_model import prepare

    force_offline()
    return prepare(default_model_dir())


@pytest.fixture(scope="session")
def smollm_server(smollm_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("smollm-server")
    server = Server(smollm_dir, root, root / "server.log")
    yield server
    server.stop()
