"""Enrollment jobs: upload a clip or name a camera URL, follow the job, read its result."""

import asyncio
import errno
import shutil
import time
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from api import schemas
from api.deps import Admin, JobId, Limit, Offset, Service, Svc
from api.uploads import VIDEO_TYPES, ApiError, check_declared, check_video_file
from db.models import EnrollmentJob
from facegate.urls import check_source_url


def _job_out(job: EnrollmentJob) -> schemas.JobOut:
    return schemas.JobOut(
        id=job.id,
        display_name=job.display_name,
        external_id=job.external_id,
        source=job.source,
        status=job.status,
        stage=job.stage,
        progress=job.progress,
        person_id=job.person_id,
        error_code=job.error_code,
        error=job.error,
        created_at=job.created_at,
        updated_at=job.updated_at,
        report_url=f"/v1/enrollments/{job.id}/report" if job.status == "succeeded" else None,
    )


def _finished_job(svc: Service, job_id: str) -> EnrollmentJob:
    job = svc.store.job(job_id)
    if job.status != "succeeded":
        raise ApiError(
            409, "job_not_finished", f"enrollment job {job_id} is {job.status}; no report yet"
        )
    if job.metrics is None:
        raise ApiError(
            410, "report_erased", "the person was deleted; their enrollment report went too"
        )
    return job


router = APIRouter(tags=["enrollments"])


@router.post(
    "/v1/enrollments",
    status_code=202,
    summary="Enroll a person: upload a head-turn clip (or name a camera stream); returns a job",
    responses={
        409: {"model": schemas.ErrorResponse},
        413: {"model": schemas.ErrorResponse},
        415: {"model": schemas.ErrorResponse},
        422: {"model": schemas.ErrorResponse},
    },
)
def create_enrollment(
    _key: Admin,
    svc: Svc,
    display_name: Annotated[str, Form(min_length=1, max_length=200)],
    external_id: Annotated[str | None, Form(max_length=200)] = None,
    video: Annotated[UploadFile | None, File(description="The clip: MP4, MOV, WebM")] = None,
    source_url: Annotated[
        str | None, Form(max_length=500, description="Or an RTSP/HTTP camera stream")
    ] = None,
) -> schemas.JobOut:
    if (video is None) == (not source_url):
        raise ApiError(422, "invalid_request", "send exactly one of: a video file, or a source_url")
    if not display_name.strip():
        raise ApiError(422, "invalid_request", "display_name must not be blank")
    if external_id and svc.store.person_by_external_id(external_id) is not None:
        raise ApiError(
            409, "duplicate_external_id", f"external id {external_id!r} is already enrolled"
        )
    if source_url:
        check_source_url(source_url, svc.settings.source_url_allow.split(","))
        job_id = svc.store.create_job(display_name.strip(), source_url, external_id)
        svc.jobs.submit(job_id, display_name.strip(), {"url": source_url}, external_id)
        return _job_out(svc.store.job(job_id))
    check_declared(video.content_type, VIDEO_TYPES, "the video")
    path = svc.uploads / f"upload-{time.time_ns()}.bin"
    try:
        with open(path, "wb") as out:
            shutil.copyfileobj(video.file, out, 1 << 20)
    except OSError as error:
        path.unlink(missing_ok=True)
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ApiError(
                507, "insufficient_storage", "the data folder is full: the clip was not kept"
            ) from None
        raise ApiError(
            503, "storage_unavailable", f"the clip cannot be stored ({error.strerror})"
        ) from None
    try:
        size = path.stat().st_size
        if size > svc.settings.max_clip_bytes:
            raise ApiError(
                413,
                "payload_too_large",
                f"the clip is {size} bytes; the limit is {svc.settings.max_clip_bytes}",
            )
        check_video_file(path, "the video")
        label = f"upload:{video.filename or 'clip'}"
        job_id = svc.store.create_job(display_name.strip(), label, external_id)
        # named after its job: a restart's sweep and `db purge` know whose it is
        kept = path.rename(svc.uploads / f"{job_id}.bin")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    try:
        svc.jobs.submit(
            job_id, display_name.strip(), {"video": str(kept), "upload": True}, external_id
        )
    except BaseException:
        kept.unlink(missing_ok=True)  # the job is failed and says why; nothing stays behind
        raise
    return _job_out(svc.store.job(job_id))


@router.get("/v1/enrollments", summary="Enrollment jobs, newest first")
def list_enrollments(
    _key: Admin,
    svc: Svc,
    status: Annotated[str | None, Query(pattern="^(queued|running|succeeded|failed)$")] = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> schemas.JobPage:
    svc.jobs.sweep()
    jobs = svc.store.jobs(status, offset, limit)
    items = [_job_out(j) for j in jobs]
    total = svc.store.job_count(status)
    return schemas.JobPage(total=total, offset=offset, limit=limit, items=items)


@router.get("/v1/enrollments/{job_id}", summary="A job's status and progress")
def get_enrollment(job_id: JobId, _key: Admin, svc: Svc) -> schemas.JobOut:
    svc.jobs.sweep()
    return _job_out(svc.store.job(job_id))


@router.get(
    "/v1/enrollments/{job_id}/events",
    summary="Follow a job as server-sent events (one `job` event per change; ends when done)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def follow_enrollment(job_id: JobId, _key: Admin, svc: Svc):
    svc.store.job(job_id)  # 404 now, not inside the stream

    async def stream():
        last = None
        while True:
            svc.jobs.sweep()
            job = await asyncio.to_thread(svc.store.job, job_id)
            body = _job_out(job).model_dump_json()
            if body != last:
                last = body
                yield f"event: job\ndata: {body}\n\n"
            if job.status in ("succeeded", "failed"):
                return
            await asyncio.sleep(0.5)

    return StreamingResponse(stream(), media_type="text/event-stream")


@router.get(
    "/v1/enrollments/{job_id}/report",
    summary="The enrollment report: frames kept, pose coverage, quality, model figures",
    responses={409: {"model": schemas.ErrorResponse}, 410: {"model": schemas.ErrorResponse}},
)
def enrollment_report(job_id: JobId, _key: Admin, svc: Svc) -> dict:
    job = _finished_job(svc, job_id)
    return {**job.metrics, "sample_grid_url": f"/v1/enrollments/{job_id}/samples.png"}


@router.get(
    "/v1/enrollments/{job_id}/report.html",
    summary="The enrollment report as one HTML page",
    response_class=HTMLResponse,
)
def enrollment_report_html(job_id: JobId, _key: Admin, svc: Svc) -> HTMLResponse:
    from api.render import enrollment_html

    job = _finished_job(svc, job_id)
    return HTMLResponse(enrollment_html(job.metrics, f"/v1/enrollments/{job_id}/samples.png"))


@router.get(
    "/v1/enrollments/{job_id}/samples.png",
    summary="A grid of the person's GAN samples (PNG)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def enrollment_samples(job_id: JobId, _key: Admin, svc: Svc) -> Response:
    job = _finished_job(svc, job_id)
    return Response(job.sample_grid or b"", media_type="image/png")
