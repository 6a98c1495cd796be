"""Embedded OpenAI-compatible LLM server (CPU by default) for archloop's demo and tests.

    python -m archloop.llm.server --host 127.0.0.1 --port 8008 --model-dir DIR \
        [--served-name smollm2-135m-instruct] [--threads 2] [--adapters-dir DIR] [--device auto]
"""

import argparse
import logging
import sys
import time
from pathlib import Path

from archloop.llm.env import SERVED_NAME, default_model_dir, force_offline, share_cores_politely
from archloop.llm.jsonlog import log


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="archloop embedded OpenAI-compatible LLM server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8008)
    parser.add_argument("--model-dir", type=Path, default=default_model_dir())
    parser.add_argument("--served-name", default=SERVED_NAME)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--adapters-dir", type=Path, default=None,
                        help="base for relative lora_path values; a subdirectory's adapter loads on first use")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    force_offline()
    share_cores_politely()
    started = time.perf_counter()
    import torch  # after force_offline, so no library sees a hub-enabled environment
    import uvicorn

    from archloop.llm import jsonlog
    from archloop.llm.app import create_app
    from archloop.llm.engine import Engine

    jsonlog.setup()
    logger = logging.getLogger("archloop.llm.server")
    if not (args.model_dir / "config.json").is_file():
        log(logger, logging.ERROR, "no model checkpoint; run python -m archloop.llm.prepare_model",
            model_dir=str(args.model_dir))
        return 2
    torch.set_num_threads(args.threads)
    engine = Engine(args.model_dir, args.served_name, args.adapters_dir, args.device)
    log(logger, logging.INFO, "model loaded", model_dir=str(args.model_dir), served_name=args.served_name,
        device=str(engine.device), threads=torch.get_num_threads(), seconds=round(time.perf_counter() - started, 2))
    uvicorn.run(create_app(engine), host=args.host, port=args.port, log_config=None, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
