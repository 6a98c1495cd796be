"""The HTTP surface: OpenAI's /v1/models, /v1/completions, /v1/chat/completions, vLLM's runtime
LoRA API and /health, on FastAPI. Handlers are plain `def`s, so FastAPI runs them in its thread
pool and /health answers while a generation is running."""

import logging
import time
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from archloop.llm.engine import Engine, Result
from archloop.llm.jsonlog import log
from archloop.llm.openai_errors import ApiError, bad_request, server_error
from archloop.llm.openai_schemas import (
    ChatRequest,
    CompletionRequest,
    LoadAdapterRequest,
    SamplingRequest,
    UnloadAdapterRequest,
)
from archloop.llm.sampling import Sampling

logger = logging.getLogger("archloop.llm.server")

COMPLETIONS_DEFAULT_MAX_TOKENS = 16  # OpenAI's documented default for /v1/completions


def sampling_of(req: SamplingRequest, max_tokens: int) -> Sampling:
    return Sampling(req.n, req.temperature, req.top_p, req.top_k, max_tokens, tuple(req.stop_list()), req.seed)


def usage_of(result: Result) -> dict:
    completion = sum(c.completion_tokens for c in result.choices)
    return {"prompt_tokens": result.prompt_tokens, "completion_tokens": completion,
            "total_tokens": result.prompt_tokens + completion}


def validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        return f"the request body is not valid JSON: {first.get('ctx', {}).get('error', '')}".rstrip(": "), None
    loc = [str(part) for part in first.get("loc", ()) if part != "body"]
    return f"{'.'.join(loc) or 'body'}: {first.get('msg', 'invalid value')}", (loc[0] if loc else None)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    def api_error(_: Request, exc: ApiError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    def invalid_body(_: Request, exc: RequestValidationError):
        message, param = validation_message(exc)
        err = bad_request(message, param)
        return JSONResponse(err.body(), status_code=err.status)

    @app.exception_handler(StarletteHTTPException)
    def http_error(_: Request, exc: StarletteHTTPException):
        err = ApiError(exc.status_code, str(exc.detail), code="not_found" if exc.status_code == 404 else None)
        return JSONResponse(err.body(), status_code=exc.status_code)

    @app.exception_handler(Exception)
    def unexpected(_: Request, exc: Exception):
        logger.exception("request failed")
        err = server_error(f"{type(exc).__name__}: {exc}")
        return JSONResponse(err.body(), status_code=err.status)


def create_app(engine: Engine) -> FastAPI:
    app = FastAPI(title="archloop embedded LLM server", docs_url=None, redoc_url=None)
    install_error_handlers(app)

    @app.middleware("http")
    async def access_log(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        log(logger, logging.INFO, "request", method=request.method, path=request.url.path,
            status=response.status_code, ms=round(1000 * (time.perf_counter() - started), 1))
        return response

    @app.get("/health")
    def health():
        return {"status": "ok", "model": engine.served_name}

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": engine.model_cards()}

    @app.post("/v1/completions")
    def completions(req: CompletionRequest):
        engine.require_model(req.model)
        prompts = [engine.encode(p) for p in ([req.prompt] if isinstance(req.prompt, str) else req.prompt)]
        if any(not p for p in prompts):
            raise bad_request("prompt must not be empty", "prompt")
        max_tokens = req.max_tokens or COMPLETIONS_DEFAULT_MAX_TOKENS
        result = engine.generate(req.model, prompts, sampling_of(req, max_tokens))
        log_generation(req, result)
        return {
            "id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
            "model": req.model,
            "choices": [{"index": i, "text": c.text, "logprobs": None, "finish_reason": c.finish_reason}
                        for i, c in enumerate(result.choices)],
            "usage": usage_of(result),
        }

    @app.post("/v1/chat/completions")
    def chat_completions(req: ChatRequest):
        engine.require_model(req.model)
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in req.messages]
        prompt = engine.encode(engine.chat_prompt(messages))
        max_tokens = req.token_limit() or engine.default_max_tokens([prompt])
        result = engine.generate(req.model, [prompt], sampling_of(req, max_tokens))
        log_generation(req, result)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": req.model,
            "choices": [{"index": i, "message": {"role": "assistant", "content": c.text}, "logprobs": None,
                         "finish_reason": c.finish_reason} for i, c in enumerate(result.choices)],
            "usage": usage_of(result),
        }

    @app.post("/v1/load_lora_adapter")
    def load_lora_adapter(req: LoadAdapterRequest):
        path = engine.load_adapter(req.lora_name, req.lora_path)
        log(logger, logging.INFO, "adapter loaded", name=req.lora_name, path=str(path))
        # vLLM answers with this plain-text body; clients only rely on the status code.
        return PlainTextResponse(f"Success: LoRA adapter '{req.lora_name}' added successfully.")

    @app.post("/v1/unload_lora_adapter")
    def unload_lora_adapter(req: UnloadAdapterRequest):
        engine.unload_adapter(req.lora_name)
        log(logger, logging.INFO, "adapter unloaded", name=req.lora_name)
        return PlainTextResponse(f"Success: LoRA adapter '{req.lora_name}' removed successfully.")

    return app


def log_generation(req: SamplingRequest, result: Result) -> None:
    usage = usage_of(result)
    log(logger, logging.INFO, "generated", model=req.model, n=req.n, prompt_tokens=usage["prompt_tokens"],
        completion_tokens=usage["completion_tokens"], seconds=round(result.seconds, 3),
        tokens_per_s=round(usage["completion_tokens"] / max(result.seconds, 1e-9), 1))
