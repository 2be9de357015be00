"""Jobs: submit, list own, status, log, events, files, figures, cancel, retry, delete."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field

from ..jobs import JobService, User
from ..jobs.record import STATES
from .auth import current_user, get_service, request_user
from .errors import responses

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=responses(401, 404, 413, 422, 503))
#: The polled pages (status, list) resolve their user with ``request_user`` instead of a
#: dependency; this documents the same bearer security in OpenAPI.
BEARER = {"security": [{"HTTPBearer": []}]}
T = TypeVar("T")
STATUSES = f"^({'|'.join(STATES)})$"


class SubmitBody(BaseModel):
    plugin: str = Field(..., description="plugin id", min_length=1, max_length=200)
    request: dict[str, Any] = Field(default_factory=dict, description="{data, dataArg, general, extra, textarea}")
    chunks: int | None = Field(None, ge=1, le=4096, description="split a parallel plugin's job into N chunks")
    sweep: dict[str, list[Any] | str] | None = Field(
        None, description='one parameter and its values: {"extra.center": [1020, 1020.5]} or "1020:1030:0.5"')


@router.post("", status_code=201, responses={200: {"description": "a repeated Idempotency-Key: the first job"},
                                             503: {"description": "Redis unavailable: nothing was stored"}})
def submit(body: SubmitBody, response: Response, service: JobService = Depends(get_service),
           user: User = Depends(current_user),
           idempotency_key: str | None = Header(None, alias="Idempotency-Key", description=(
               "any unique value per logical submit (a UUID4); a repeat returns the first job with 200"))
           ) -> dict[str, Any]:
    record, replayed = service.submit_once(user, body.plugin, body.request, idempotency_key,
                                          chunks=body.chunks, sweep=body.sweep)
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return record


@router.get("", openapi_extra=BEARER,
            responses={200: {"description": "one page of job records",
                             "content": {"application/json": {"schema": {"type": "object"}}}}})
async def list_jobs(request: Request,
                    status: str | None = Query(None, pattern=STATUSES, description="one state"),
                    plugin: str | None = Query(None, max_length=200, description="exact plugin id"),
                    owner: str | None = Query(None, max_length=64, description="admins: one user's jobs"),
                    created_after: str | None = Query(None, max_length=40, description="ISO 8601 time"),
                    created_before: str | None = Query(None, max_length=40, description="ISO 8601 time"),
                    q: str | None = Query(None, max_length=200, description="text in the plugin id"),
                    parent: str | None = Query(None, max_length=32, description="the children of this job group"),
                    limit: int = Query(50, ge=1, le=500), cursor: str | None = Query(None, max_length=200)) -> Response:
    """Newest first; pass ``next_cursor`` as ``cursor`` for the next page (keyset pagination).

    Returns ``{"jobs": [...records], "limit", "next_cursor"}``."""
    service: JobService = request.app.state.service
    user = await request_user(request, service)
    jobs, next_cursor = await index_read(request, lambda: service.list_jobs(
        user, status, plugin, limit, cursor, owner=owner, created_after=created_after,
        created_before=created_before, q=q, parent=parent, as_json=True))
    body = f'{{"jobs":[{",".join(jobs)}],"limit":{limit},"next_cursor":{json.dumps(next_cursor)}}}'
    return Response(body, media_type="application/json")


@router.get("/{job_id}", openapi_extra=BEARER,
            responses={200: {"description": "the job record (job.json)",
                             "content": {"application/json": {"schema": {"type": "object"}}}}})
async def status(job_id: str, request: Request) -> Response:
    service: JobService = request.app.state.service
    user = await request_user(request, service)
    return json_response(await index_read(request, service.get, user, job_id))


async def index_read(request: Request, read: Callable[..., T], *args: Any) -> T:
    """``read(*args)`` on the app's small read pool, off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(request.app.state.read_pool, read, *args)


def json_response(document: Any) -> Response:
    """Records are plain JSON already: dumped in one C call, skipping FastAPI's per-field
    encoder (the status and list pages are the hot paths that job pages poll)."""
    return Response(json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False),
                    media_type="application/json")


@router.get("/{job_id}/children")
def children(job_id: str, service: JobService = Depends(get_service),
             user: User = Depends(current_user)) -> dict[str, Any]:
    return {"children": service.children(user, job_id)}


@router.get("/{job_id}/log")
def log(job_id: str, offset: int = Query(0, ge=0, le=2**62), service: JobService = Depends(get_service),
        user: User = Depends(current_user)) -> dict[str, Any]:
    text, new_offset = service.log(user, job_id, offset)
    return {"text": text, "offset": new_offset, "status": service.get(user, job_id)["status"]}


@router.get("/{job_id}/events")
def events(job_id: str, after: str = Query("0-0", pattern=r"^\d{1,19}-\d{1,19}$"), service: JobService = Depends(get_service),
           user: User = Depends(current_user)) -> dict[str, Any]:
    return {"events": service.events(user, job_id, after)}


@router.get("/{job_id}/live")
def live_events(job_id: str, after: int = Query(0, ge=0, le=2**62), limit: int = Query(1000, ge=1, le=5000),
                service: JobService = Depends(get_service), user: User = Depends(current_user)) -> dict[str, Any]:
    """A live job's results (``type: live``) and lag reports (``type: lag``) after event ``after``."""
    return service.live_events(user, job_id, after, limit)


@router.get("/{job_id}/files")
def files(job_id: str, service: JobService = Depends(get_service),
          user: User = Depends(current_user)) -> dict[str, Any]:
    return {"files": service.files(user, job_id)}


@router.get("/{job_id}/files/{path:path}")
def download(job_id: str, path: str, service: JobService = Depends(get_service),
             user: User = Depends(current_user)) -> FileResponse:
    file = service.file_path(user, job_id, path)
    return FileResponse(file, filename=file.name)


@router.get("/{job_id}/zip")
def download_zip(job_id: str, service: JobService = Depends(get_service),
                 user: User = Depends(current_user)) -> StreamingResponse:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in service.files(user, job_id):
            archive.write(service.file_path(user, job_id, entry["path"]), f"{job_id}/{entry['path']}")
    buffer.seek(0)
    return StreamingResponse(buffer, media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{job_id}.zip"'})


@router.get("/{job_id}/figures/{name}")
def figure(job_id: str, name: str, service: JobService = Depends(get_service),
           user: User = Depends(current_user)) -> dict[str, Any]:
    return service.figure(user, job_id, name)


@router.post("/{job_id}/cancel")
def cancel(job_id: str, service: JobService = Depends(get_service),
           user: User = Depends(current_user)) -> dict[str, Any]:
    return service.cancel(user, job_id)


@router.post("/{job_id}/retry", status_code=201, responses=responses(409))
def retry(job_id: str, service: JobService = Depends(get_service),
          user: User = Depends(current_user)) -> dict[str, Any]:
    return service.retry(user, job_id)


@router.delete("/{job_id}", status_code=204)
def delete(job_id: str, service: JobService = Depends(get_service), user: User = Depends(current_user)) -> None:
    service.delete(user, job_id)
