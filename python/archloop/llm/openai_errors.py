"""Errors in the JSON shape OpenAI documents (and the openai clients parse):
{"error": {"message", "type", "param", "code"}} with a matching HTTP status."""

from dataclasses import dataclass


@dataclass
class ApiError(Exception):
    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, param=param)


def model_not_found(name: str) -> ApiError:
    return ApiError(
        404, f"The model `{name}` does not exist.", param="model", code="model_not_found"
    )


def not_found(message: str) -> ApiError:
    return ApiError(404, message, code="not_found")


def server_error(message: str) -> ApiError:
    return ApiError(500, message, type="server_error")
