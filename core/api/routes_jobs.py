"""Jobs: submit, list own, status, log, events, files, figures, cancel, retry, delete."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field

from ..jobs import JobService, User
from .auth import current_user, get_service
from .errors import responses

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=responses(401, 404, 413, 422, 503))
STATUSES = "^(queued|running|succeeded|failed|cancelled)$"


class SubmitBody(BaseModel):
    plugin: str = Field(..., description="plugin id", min_length=1, max_length=200)
    request: dict[str, Any] = Field(default_factory=dict, description="{data, dataArg, general, extra, textarea}")


@router.post("", status_code=201)
def submit(body: SubmitBody, service: JobService = Depends(get_service),
           user: User = Depends(current_user)) -> dict[str, Any]:
    return service.submit(user, body.plugin, body.request)


@router.get("")
def list_jobs(status: str | None = Query(None, pattern=STATUSES), plugin: str | None = None,
              limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0),
              service: JobService = Depends(get_service), user: User = Depends(current_user)) -> dict[str, Any]:
    jobs, total = service.list_jobs(user, status, plugin, limit, offset)
    return {"jobs": jobs, "total": total, "limit": limit, "offset": offset}


@router.get("/{job_id}")
def status(job_id: str, service: JobService = Depends(get_service),
           user: User = Depends(current_user)) -> dict[str, Any]:
    return service.get(user, job_id)


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
def live_events(job_id: str, after: int = Query(0, ge=0), limit: int = Query(1000, ge=1, le=5000),
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
