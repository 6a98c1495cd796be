"""The server on the real converted SmolLM2-135M-Instruct: short real generations, listing,
adapter API errors and OpenAI error shapes."""

import pytest

MODEL = "smollm2-135m-instruct"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Name a colour."}], "max_tokens": 6}


def error_of(body) -> dict:
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def test_health_and_model_listing(smollm_server):
    assert smollm_server.get("/health") == (200, {"status": "ok", "model": MODEL})
    status, body = smollm_server.get("/v1/models")
    assert status == 200 and body["object"] == "list"
    assert [m["id"] for m in body["data"]][:1] == [MODEL]
    assert body["data"][0]["max_model_len"] == 8192


def test_chat_n_samples_in_one_request_with_usage(smollm_server):
    status, body = smollm_server.post("/v1/chat/completions",
                                      CHAT | {"n": 3, "temperature": 0.7, "top_p": 0.95, "top_k": 100, "seed": 7})
    assert status == 200, body
    assert body["object"] == "chat.completion" and body["model"] == MODEL and body["id"].startswith("chatcmpl-")
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    for choice in body["choices"]:
        assert choice["message"]["role"] == "assistant" and choice["message"]["content"].strip()
        assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["prompt_tokens"] > 5 and 3 <= usage["completion_tokens"] <= 3 * 6
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_same_seed_same_samples_and_greedy_n(smollm_server):
    request = CHAT | {"n": 2, "temperature": 1.0, "seed": 123}
    first, second = (smollm_server.post("/v1/chat/completions", request)[1] for _ in range(2))
    assert [c["message"] for c in first["choices"]] == [c["message"] for c in second["choices"]]
    status, greedy = smollm_server.post("/v1/chat/completions", CHAT | {"n": 2, "temperature": 0})
    assert status == 200 and greedy["choices"][0]["message"] == greedy["choices"][1]["message"]


def test_completions_several_prompts_and_stop(smollm_server):
    request = {"model": MODEL, "prompt": ["The capital of France is", "1, 2, 3,"], "n": 2, "max_tokens": 8,
               "temperature": 0, "stop": [","]}
    status, body = smollm_server.post("/v1/completions", request)
    assert status == 200, body
    assert body["object"] == "text_completion" and len(body["choices"]) == 4
    texts = [c["text"] for c in body["choices"]]
    assert texts[0] == texts[1] and "Paris" in texts[0]
    assert "," not in texts[2] and body["choices"][2]["finish_reason"] == "stop"


@pytest.mark.parametrize("patch,param", [
    ({"n": 0}, "n"),
    ({"temperature": 3}, "temperature"),
    ({"messages": []}, "messages"),
    ({"stream": True}, "stream"),
    ({"max_tokens": 9000}, "max_tokens"),
])
def test_bad_requests_are_openai_400s(smollm_server, patch, param):
    status, body = smollm_server.post("/v1/chat/completions", CHAT | patch)
    assert status == 400
    error = error_of(body)
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_unknown_model_is_404_and_bad_json_400(smollm_server):
    status, body = smollm_server.post("/v1/chat/completions", CHAT | {"model": "gpt-nothing"})
    assert status == 404 and error_of(body)["code"] == "model_not_found"
    status, body = smollm_server.post("/v1/completions", b"{not json")
    assert status == 400 and "JSON" in error_of(body)["message"]
    status, body = smollm_server.get("/v1/nowhere")
    assert status == 404 and error_of(body)


def test_adapter_api_errors(smollm_server, tmp_path):
    status, body = smollm_server.post("/v1/load_lora_adapter", {"lora_name": "a1", "lora_path": str(tmp_path)})
    assert status == 400 and "adapter_config.json" in error_of(body)["message"]
    status, body = smollm_server.post("/v1/load_lora_adapter", {"lora_name": "a1"})
    assert status == 400 and error_of(body)["param"] == "lora_path"
    status, body = smollm_server.post("/v1/unload_lora_adapter", {"lora_name": "never-loaded"})
    assert status == 404 and error_of(body)
