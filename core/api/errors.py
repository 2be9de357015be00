"""The one error shape: {"error": {"code", "message", "problems": [...]}}."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import ConflictError, HisciError, InputError, ParamsError, UnknownPluginError, ValidationError
from ..jobs.idempotency import IdempotencyConflict
from ..jobs.service import RedisUnavailable
from ..jobs.store import JobNotFound, UploadTooLarge

STATUS = [
    (RedisUnavailable, 503),
    (IdempotencyConflict, 409),
    (JobNotFound, 404),
    (UnknownPluginError, 404),
    (UploadTooLarge, 413),
    (ConflictError, 409),
    (ParamsError, 422),
    (ValidationError, 422),
    (InputError, 422),
]


def error_body(code: str, message: str, problems: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "problems": problems or []}}


def install(app: FastAPI) -> None:
    @app.exception_handler(HisciError)
    async def hisci_error(_: Request, exc: HisciError) -> JSONResponse:
        status = next((s for cls, s in STATUS if isinstance(exc, cls)), 422)
        problems = [{"pointer": p.pointer, "message": p.message, "given": _safe(p.given),
                     "allowed": _safe(p.allowed), "hint": p.hint} for p in exc.problems]
        return JSONResponse(error_body(exc.code, exc.message if len(problems) > 1 else str(exc), problems),
                            status_code=status, headers={"Retry-After": "5"} if status == 503 else None)

    @app.exception_handler(RequestValidationError)
    async def request_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"pointer": "/" + "/".join(str(p) for p in err.get("loc", ())[1:]),
                     "message": err.get("msg", ""), "given": _safe(err.get("input")), "allowed": None}
                    for err in exc.errors()]
        return JSONResponse(error_body("malformed_request", "the request body is malformed", problems),
                            status_code=422)

    @app.exception_handler(RedisError)
    async def redis_down(_: Request, exc: RedisError) -> JSONResponse:
        return JSONResponse(error_body("unavailable", f"the job queue (Redis) is unavailable: {type(exc).__name__}; "
                                       "try again shortly"), status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's "error parsing the body": a malformed request, like the rest
            return JSONResponse(error_body("malformed_request", str(exc.detail)), status_code=422)
        codes = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
                 503: "unavailable"}
        return JSONResponse(error_body(codes.get(exc.status_code, "error"), str(exc.detail)),
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))


def _safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN/Infinity are not JSON
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _safe(v) for k, v in value.items()}
    return str(value)


class ErrorDetail(BaseModel):
    code: str
    message: str
    problems: list[dict[str, Any]] = []


class ErrorBody(BaseModel):
    """The one error shape of every 4xx/5xx answer under /api/v1."""

    error: ErrorDetail


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, all in the one error shape."""
    text = {401: "missing or invalid bearer token", 404: "no such plugin, job, file or upload (yours)",
            405: "method not allowed", 409: "conflict with the job's state",
            413: "body or upload larger than the limit", 422: "invalid request: the problems name each field",
            503: "the job queue (Redis) is unavailable; retry"}
    return {s: {"model": ErrorBody, "description": text[s]} for s in statuses}
