"""Request bodies of the OpenAI-compatible endpoints, as OpenAI and vLLM document them. Fields
this server does not implement are ignored, except those whose absence would silently change
the result (streaming, log-probabilities), which are rejected."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class SamplingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    n: int = Field(1, ge=1, le=128)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(-1, ge=-1)  # vLLM extension; -1 or 0 disables it
    max_tokens: int | None = Field(None, ge=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    logprobs: bool | int | None = None

    @field_validator("stream")
    @classmethod
    def no_streaming(cls, value: bool) -> bool:
        if value:
            raise ValueError("streaming is not supported by this server; send stream=false")
        return value

    @field_validator("logprobs")
    @classmethod
    def no_logprobs(cls, value):
        if value:
            raise ValueError("logprobs are not supported by this server")
        return value

    @field_validator("temperature", "top_p", mode="before")
    @classmethod
    def null_means_default(cls, value, info):
        # The openai clients send explicit nulls for unset fields in some versions.
        return {"temperature": 1.0, "top_p": 1.0}[info.field_name] if value is None else value

    def stop_list(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return [s for s in stops if s]


class CompletionRequest(SamplingRequest):
    prompt: str | list[str] = Field(min_length=1)


class ChatRequest(SamplingRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class LoadAdapterRequest(BaseModel):
    lora_name: str = Field(min_length=1)
    lora_path: str = Field(min_length=1)


class UnloadAdapterRequest(BaseModel):
    lora_name: str = Field(min_length=1)
