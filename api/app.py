"""The door-access HTTP service (FastAPI), versioned under /v1. `create_app()` builds it;
`facegate serve` runs it under uvicorn.

Every route but /healthz and /readyz needs an API key (X-API-Key, or Authorization: Bearer).
Scopes: admin (everything), door (its own door's access endpoint), audit (events, reports,
metrics). Errors are JSON {"error": {"code", "message"}} with a stable code, never a trace.
"""

import asyncio
import errno
import json
import logging
import math
import shutil
import threading
import time
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import Depends, FastAPI, File, Form, Path, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import schemas
from api.batcher import MicroBatcher, Overloaded, TimedOut
from api.jobs import make_jobs
from api.metrics import ServiceMetrics
from api.uploads import (
    IMAGE_TYPES,
    VIDEO_TYPES,
    ApiError,
    check_declared,
    check_video_file,
    decode_base64,
    decode_image,
)
from api.webhooks import WebhookSender
from db import KeyInfo, Store
from db.models import AccessPolicy, Door, EnrollmentJob
from facegate.errors import FacegateError
from facegate.settings import Settings, get_settings
from facegate.urls import check_source_url
from recognize.recognizer import DECISIONS
from recognize.recognizer import Query as DoorQuery

log = logging.getLogger("facegate.api")

NOT_FOUND_CODES = {
    "person_not_found",
    "door_not_found",
    "event_not_found",
    "job_not_found",
    "api_key_not_found",
    "policy_not_found",
}
UNAVAILABLE_CODES = {
    "configuration_error",
    "model_file_error",
    "schema_out_of_date",
    "jobs_unavailable",
}
CONFLICT_CODES = {"duplicate_external_id", "door_exists"}
ERROR_RESPONSES = {
    401: {"model": schemas.ErrorResponse, "description": "Missing or wrong API key"},
    403: {"model": schemas.ErrorResponse, "description": "The key's scope does not allow this"},
    429: {"model": schemas.ErrorResponse, "description": "Rate limit: retry after Retry-After"},
}


def status_for(error: FacegateError) -> int:
    if isinstance(error, ApiError):
        return error.status
    if error.code in NOT_FOUND_CODES:
        return 404
    if error.code in UNAVAILABLE_CODES:
        return 503
    if error.code in CONFLICT_CODES:
        return 409
    return 422  # a source, enrollment or request the service understood and refuses


def error_response(status: int, code: str, message: str, headers: dict | None = None):
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


class RateLimiter:
    """A token bucket per API key: `per_minute` sustained, bursts of a tenth of that."""

    def __init__(self, per_minute: int):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, per_minute / 10.0)
        self.buckets: dict[int, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def take(self, key_id: int) -> float:
        """0 when allowed; otherwise the seconds until a token is free."""
        now = time.monotonic()
        with self.lock:
            tokens, last = self.buckets.get(key_id, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self.buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self.buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / self.rate


class Service:
    """What the routes share: the store, the recognizer (fed by the micro-batcher), the job runner,
    the webhook sender, metrics and rate limits."""

    def __init__(self, settings: Settings, store: Store | None = None, pipeline=None):
        self.settings = settings
        self.store = store or Store(settings)
        self.pipeline = pipeline
        self._building = threading.Lock()
        self.recognizer = None  # worker 0's; each further decision worker has its own
        self._recognizers: dict[int, object] = {}
        self.jobs = make_jobs(self.store, settings, pipeline)
        self.webhooks = WebhookSender(settings)
        self.metrics = ServiceMetrics(self.webhooks)
        # door queries, gathered into batched passes on one thread: the only caller of the models
        self.batcher = MicroBatcher(
            self._decide_batch,
            max_batch=settings.batch_max_queries,
            window_s=settings.batch_window_ms / 1000,
            max_queue=settings.max_queued_queries,
            timeout_s=settings.decision_timeout_s,
            on_batch=self.metrics.batch,
            workers=settings.decision_workers,
        )
        self.metrics.watch_queue(lambda: self.batcher.queued)
        self.metrics.watch_unavailable(
            lambda: sum(r.unavailable_artifacts for r in list(self._recognizers.values()))
        )
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        self.uploads = FilePath(settings.data_dir) / "uploads"
        self.uploads.mkdir(parents=True, exist_ok=True)

    def get_recognizer(self, worker: int = 0):
        """Decision worker `worker`'s recognizer (0: also the one health checks read)."""
        from recognize import Recognizer

        with self._building:
            if worker not in self._recognizers:
                # the face pipeline (stateless at inference) is shared; the discriminators and
                # their caches are each worker's own
                first = self._recognizers.get(0)
                pipeline = first.pipeline if first is not None else self.pipeline
                self._recognizers[worker] = Recognizer(self.store, pipeline)
            if worker == 0:
                self.recognizer = self._recognizers[0]
            return self._recognizers[worker]

    def forget(self, person_id: int) -> None:
        """Drop a deleted person's cached discriminator from every worker's models."""
        for recognizer in list(self._recognizers.values()):
            recognizer.personal.forget(person_id)

    def _decide_batch(self, queries: list[DoorQuery], worker: int) -> list:
        recognizer = self.get_recognizer(worker)
        recognizer.refresh_if_changed()
        return recognizer.identify_many(queries)

    def close(self) -> None:
        self.batcher.close()
        self.jobs.close()
        self.webhooks.close()


api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key")
bearer = HTTPBearer(auto_error=False, description="The same API key as a bearer token")


_building = threading.Lock()


def service(request: Request) -> Service:
    """The app's Service, built on first use (with or without a lifespan-aware server)."""
    state = request.app.state
    if getattr(state, "service", None) is None:
        with _building:
            if getattr(state, "service", None) is None:
                state.service = Service(*state.service_args)
    return state.service


def authorize(*scopes: str):
    """A dependency: the caller's key, refused unless its scope is one of `scopes`."""

    def check(
        request: Request,
        header: Annotated[str | None, Depends(api_key_header)] = None,
        token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None,
    ) -> KeyInfo:
        svc = service(request)
        secret = header or (token.credentials if token else None)
        if not secret:
            raise ApiError(
                401, "missing_api_key", "send an API key in X-API-Key or Authorization: Bearer"
            )
        key = svc.store.authenticate(secret)
        if key is None:
            raise ApiError(401, "invalid_api_key", "the API key is unknown or revoked")
        wait = svc.limiter.take(key.id)
        if wait:
            seconds = max(1, math.ceil(wait))  # the message and the header say the same
            raise ApiError(
                429,
                "rate_limited",
                f"too many requests with this key; retry in {seconds} s",
                {"Retry-After": str(seconds)},
            )
        if key.scope not in scopes:
            raise ApiError(
                403,
                "forbidden_scope",
                f"a {key.scope} key cannot do this; it needs one of: {', '.join(scopes)}",
            )
        request.state.key = key
        return key

    return check


Admin = Annotated[KeyInfo, Depends(authorize("admin"))]
Auditor = Annotated[KeyInfo, Depends(authorize("admin", "audit"))]
DoorCaller = Annotated[KeyInfo, Depends(authorize("admin", "door"))]
Svc = Annotated[Service, Depends(service)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
MAX_ID = 2**31 - 1  # ids are 32-bit on every database facegate supports
PersonId = Annotated[int, Path(ge=1, le=MAX_ID)]
EventId = Annotated[int, Path(ge=1, le=MAX_ID)]
KeyId = Annotated[int, Path(ge=1, le=MAX_ID)]
PolicyId = Annotated[int, Path(ge=1, le=MAX_ID)]
JobId = Annotated[str, Path(min_length=1, max_length=36)]
DoorName = Annotated[str, Path(min_length=1, max_length=100)]
Limit = Annotated[int, Query(ge=1, le=500)]


class BodyLimit:
    """Pure ASGI middleware: refuses a request body over its route's limit (413) before the
    route reads it, and a body without a declared length (411)."""

    def __init__(self, app, settings: Settings):
        self.app = app
        self.clip = settings.max_clip_bytes + 1_000_000
        # base64 grows a file by a third; the multipart framing is small
        self.burst = settings.max_burst_frames * settings.max_image_bytes * 4 // 3 + 1_000_000
        self.other = 1_000_000

    def limit(self, path: str) -> int:
        if path.rstrip("/") == "/v1/enrollments":
            return self.clip
        if path.endswith("/access"):
            return self.burst
        return self.other

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        limit = self.limit(scope["path"])
        problem = None
        if length is None:
            if headers.get(b"transfer-encoding"):
                problem = (411, "length_required", "send the body with a Content-Length")
        elif not length.isdigit():
            problem = (400, "invalid_request", "Content-Length is not a number")
        elif int(length) > limit:
            problem = (
                413,
                "payload_too_large",
                f"the body is {int(length)} bytes; this endpoint accepts at most {limit}",
            )
        if problem is not None:
            response = error_response(*problem)
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)


def create_app(
    settings: Settings | None = None, store: Store | None = None, pipeline=None, warm=False
) -> FastAPI:
    """The app. `store` and `pipeline` may be shared with the caller (tests); by default both
    are built from `settings` when the app starts. `warm` loads the face models at start-up, so
    the first door query is as fast as the rest (`facegate serve` does)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if getattr(app.state, "service", None) is None:
            app.state.service = Service(*app.state.service_args)
        if warm:
            for worker in range(settings.decision_workers):
                await asyncio.to_thread(app.state.service.get_recognizer, worker)
        try:
            yield
        finally:
            app.state.service.close()
            app.state.service = None

    app = FastAPI(
        title="facegate",
        version="1.0",
        summary="Face-recognition door access with personal GAN-trained discriminators.",
        description=__doc__,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    app.state.service_args = (settings, store, pipeline)
    app.state.service = None
    app.add_middleware(BodyLimit, settings=settings)
    _handlers(app)
    _health_routes(app)
    _person_routes(app)
    _enrollment_routes(app)
    _door_routes(app)
    _access_routes(app)
    _event_routes(app)
    return app


# --- errors and metrics --------------------------------------------------------------------------


def _disk_full(error: BaseException) -> bool:
    """An OSError ENOSPC/EDQUOT, or SQLite's "database or disk is full", anywhere in the chain."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "database or disk is full" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(FacegateError)
    async def facegate_error(request: Request, error: FacegateError):
        headers = error.headers if isinstance(error, ApiError) else None
        return error_response(status_for(error), error.code, error.message, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        problems = []
        for item in error.errors()[:5]:
            where = ".".join(str(p) for p in item.get("loc", ()) if p != "body") or "body"
            problems.append(f"{where}: {item.get('msg', 'invalid')}")
        return error_response(422, "invalid_request", "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        if error.status_code == 400:  # FastAPI's "error parsing the body" (e.g. JSON too deep)
            return error_response(
                422,
                "invalid_request",
                f"the request body cannot be parsed ({error.detail}): malformed or too deeply "
                "nested JSON?",
            )
        codes = {404: "not_found", 405: "method_not_allowed"}
        return error_response(
            error.status_code, codes.get(error.status_code, "http_error"), str(error.detail)
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        if _disk_full(error):
            return error_response(
                507, "insufficient_storage", "the data folder is full: nothing was recorded"
            )
        return error_response(
            500, "internal_error", "the service failed unexpectedly; the error is in its log"
        )

    # Starlette answers a handler for Exception itself from its outermost middleware and then
    # re-raises, and uvicorn closes the connection: a client's next request on it failed (198
    # read errors beside 206 answers 507 in the faults benchmark's full disk). Storage and
    # database errors are answered by the same handler one layer in, where nothing is re-raised.
    for kind in (OSError, SQLAlchemyError):
        app.add_exception_handler(kind, unexpected)

    @app.middleware("http")
    async def count(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        svc = getattr(request.app.state, "service", None)
        if svc is not None:
            svc.metrics.request(
                request.method,
                route.path if route is not None else "unmatched",
                response.status_code,
                time.perf_counter() - started,
            )
        return response


# --- health ----------------------------------------------------------------------------------


def _health_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["health"], summary="Liveness: the process answers")
    def healthz() -> schemas.Health:
        return schemas.Health(status="ok")

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Readiness: database, index and models loaded",
        responses={503: {"model": schemas.Health}},
    )
    def readyz(svc: Svc):
        checks: dict[str, str] = {}
        try:
            svc.store.db_version()
            checks["database"] = "ok"
            svc.store.index(svc.settings.embedder)
            checks["index"] = "ok"
        except Exception as error:  # any failure here means not ready, and says which
            checks.setdefault("database", f"failed: {type(error).__name__}")
            checks.setdefault("index", "not loaded")
        for name in ("general", "levels"):
            try:
                recognizer = svc.get_recognizer()
                recognizer.refresh_if_changed()
                getattr(recognizer, name)()
                checks[name] = "ok"
            except FacegateError as error:
                checks[name] = error.message
            except Exception as error:
                checks[name] = f"failed: {type(error).__name__}"
        ready = all(v == "ok" for v in checks.values())
        status = "ok" if ready else "not_ready"
        try:
            missing = svc.store.persons_missing_artifacts()
        except Exception as error:
            missing, checks["artifacts"] = [], f"failed: {type(error).__name__}"
        if missing:
            # the others' doors keep working: those persons are scored without the lost model
            shown = ", ".join(str(p) for p in missing[:20])
            more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
            checks["artifacts"] = (
                f"model files missing for persons {shown}{more}; run `facegate db check`"
            )
            status = "degraded" if ready else status
        elif "artifacts" not in checks:
            checks["artifacts"] = "ok"
        body = schemas.Health(status=status, checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics: requests, decisions, latency",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}},
    )
    def metrics(_key: Auditor, svc: Svc) -> Response:
        body, content_type = svc.metrics.render()
        return Response(body, media_type=content_type)


# --- persons ---------------------------------------------------------------------------------


def _person_out(person, samples: int) -> schemas.PersonOut:
    return schemas.PersonOut(
        id=person.id,
        display_name=person.display_name,
        external_id=person.external_id,
        status=person.status,
        samples=samples,
        created_at=person.created_at,
    )


def _person_routes(app: FastAPI) -> None:
    tags = ["persons"]

    @app.get("/v1/persons", tags=tags, summary="Enrolled persons, paged and searchable")
    def list_persons(
        _key: Admin,
        svc: Svc,
        search: Annotated[str | None, Query(max_length=200)] = None,
        offset: Offset = 0,
        limit: Limit = 50,
    ) -> schemas.PersonPage:
        total, rows = svc.store.find_persons(search, offset, limit)
        items = [_person_out(p, n) for p, n in rows]
        return schemas.PersonPage(total=total, offset=offset, limit=limit, items=items)

    @app.get("/v1/persons/{person_id}", tags=tags, summary="One person")
    def get_person(person_id: PersonId, _key: Admin, svc: Svc) -> schemas.PersonOut:
        return _person_out(*svc.store.person(person_id))

    @app.patch("/v1/persons/{person_id}", tags=tags, summary="Rename a person")
    def rename_person(
        person_id: PersonId, body: schemas.PersonRename, _key: Admin, svc: Svc
    ) -> schemas.PersonOut:
        svc.store.rename_person(person_id, body.display_name)
        return _person_out(*svc.store.person(person_id))

    @app.delete(
        "/v1/persons/{person_id}",
        tags=tags,
        summary="Delete a person with their biometric data (samples, models, index entry; "
        "past events keep time, door and decision only)",
    )
    def delete_person(person_id: PersonId, _key: Admin, svc: Svc) -> schemas.Deleted:
        svc.store.delete_person(person_id)
        svc.forget(person_id)
        return schemas.Deleted(deleted=person_id)


# --- enrollment jobs ---------------------------------------------------------------------------


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


def _enrollment_routes(app: FastAPI) -> None:
    tags = ["enrollments"]

    @app.post(
        "/v1/enrollments",
        tags=tags,
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
            raise ApiError(
                422, "invalid_request", "send exactly one of: a video file, or a source_url"
            )
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

    @app.get("/v1/enrollments", tags=tags, summary="Enrollment jobs, newest first")
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

    @app.get("/v1/enrollments/{job_id}", tags=tags, summary="A job's status and progress")
    def get_enrollment(job_id: JobId, _key: Admin, svc: Svc) -> schemas.JobOut:
        svc.jobs.sweep()
        return _job_out(svc.store.job(job_id))

    @app.get(
        "/v1/enrollments/{job_id}/events",
        tags=tags,
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

    @app.get(
        "/v1/enrollments/{job_id}/report",
        tags=tags,
        summary="The enrollment report: frames kept, pose coverage, quality, model figures",
        responses={409: {"model": schemas.ErrorResponse}, 410: {"model": schemas.ErrorResponse}},
    )
    def enrollment_report(job_id: JobId, _key: Admin, svc: Svc) -> dict:
        job = _finished_job(svc, job_id)
        return {**job.metrics, "sample_grid_url": f"/v1/enrollments/{job_id}/samples.png"}

    @app.get(
        "/v1/enrollments/{job_id}/report.html",
        tags=tags,
        summary="The enrollment report as one HTML page",
        response_class=HTMLResponse,
    )
    def enrollment_report_html(job_id: JobId, _key: Admin, svc: Svc) -> HTMLResponse:
        from api.render import enrollment_html

        job = _finished_job(svc, job_id)
        return HTMLResponse(enrollment_html(job.metrics, f"/v1/enrollments/{job_id}/samples.png"))

    @app.get(
        "/v1/enrollments/{job_id}/samples.png",
        tags=tags,
        summary="A grid of the person's GAN samples (PNG)",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
    )
    def enrollment_samples(job_id: JobId, _key: Admin, svc: Svc) -> Response:
        job = _finished_job(svc, job_id)
        return Response(job.sample_grid or b"", media_type="image/png")


# --- doors, policies, keys -------------------------------------------------------------------


def _door_out(door: Door) -> schemas.DoorOut:
    return schemas.DoorOut(
        id=door.id,
        name=door.name,
        required_level=door.required_level,
        require_liveness=door.require_liveness,
        region=door.region,
        description=door.description,
        created_at=door.created_at,
    )


def _policy_out(policy: AccessPolicy, door: str) -> schemas.PolicyOut:
    return schemas.PolicyOut(
        id=policy.id,
        door=door,
        person_id=policy.person_id,
        group_id=policy.group_id,
        weekdays=policy.weekdays,
        start=policy.start_time,
        end=policy.end_time,
        valid_from=policy.valid_from,
        valid_until=policy.valid_until,
    )


def _key_out(key: KeyInfo) -> dict:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scope": key.scope,
        "door": key.door,
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
    }


def _door_row(svc: Service, name: str) -> Door:
    for door in svc.store.doors():
        if door.name == name:
            return door
    raise ApiError(404, "door_not_found", f"no door named {name!r}")


def _door_routes(app: FastAPI) -> None:
    @app.post("/v1/doors", tags=["doors"], status_code=201, summary="Create a door")
    def create_door(body: schemas.DoorIn, _key: Admin, svc: Svc) -> schemas.DoorOut:
        if any(d.name == body.name for d in svc.store.doors()):
            raise ApiError(409, "door_exists", f"a door named {body.name!r} exists already")
        svc.store.add_door(
            body.name, body.required_level, body.require_liveness, body.region, body.description
        )
        return _door_out(_door_row(svc, body.name))

    @app.get("/v1/doors", tags=["doors"], summary="All doors")
    def list_doors(_key: Admin, svc: Svc) -> list[schemas.DoorOut]:
        return [_door_out(d) for d in svc.store.doors()]

    @app.get("/v1/doors/{door}", tags=["doors"], summary="One door")
    def get_door(door: DoorName, _key: Admin, svc: Svc) -> schemas.DoorOut:
        return _door_out(_door_row(svc, door))

    @app.delete(
        "/v1/doors/{door}",
        tags=["doors"],
        summary="Remove a door with its policies and door keys; its events stay",
    )
    def delete_door(door: DoorName, _key: Admin, svc: Svc) -> schemas.Deleted:
        svc.store.delete_door(door)
        return schemas.Deleted(deleted=door)

    @app.post(
        "/v1/doors/{door}/policies",
        tags=["policies"],
        status_code=201,
        summary="Let a person through a door (weekdays, times, validity window)",
    )
    def create_policy(
        door: DoorName, body: schemas.PolicyIn, _key: Admin, svc: Svc
    ) -> schemas.PolicyOut:
        row = _door_row(svc, door)
        svc.store.check_person_exists(body.person_id)
        if body.valid_from and body.valid_until and body.valid_until <= body.valid_from:
            raise ApiError(422, "invalid_request", "valid_until must be after valid_from")
        policy_id = svc.store.allow(
            row.id,
            person_id=body.person_id,
            weekdays=body.weekdays,
            start=body.start,
            end=body.end,
            valid_from=body.valid_from,
            valid_until=body.valid_until,
        )
        policy = next(p for p in svc.store.policies(row.id) if p.id == policy_id)
        return _policy_out(policy, door)

    @app.get("/v1/doors/{door}/policies", tags=["policies"], summary="A door's policies")
    def list_policies(door: DoorName, _key: Admin, svc: Svc) -> list[schemas.PolicyOut]:
        row = _door_row(svc, door)
        return [_policy_out(p, door) for p in svc.store.policies(row.id)]

    @app.delete("/v1/policies/{policy_id}", tags=["policies"], summary="Revoke a policy")
    def delete_policy(policy_id: PolicyId, _key: Admin, svc: Svc) -> schemas.Deleted:
        svc.store.delete_policy(policy_id)
        return schemas.Deleted(deleted=policy_id)

    @app.post(
        "/v1/keys",
        tags=["keys"],
        status_code=201,
        summary="Create an API key (the secret is in this answer only)",
    )
    def create_key(body: schemas.KeyIn, _key: Admin, svc: Svc) -> schemas.KeyCreated:
        secret, key = svc.store.create_key(body.name, body.scope, body.door)
        return schemas.KeyCreated(key=secret, **_key_out(key))

    @app.get("/v1/keys", tags=["keys"], summary="All API keys (never their secrets)")
    def list_keys(_key: Admin, svc: Svc) -> list[schemas.KeyOut]:
        return [schemas.KeyOut(**_key_out(k)) for k in svc.store.api_keys()]

    @app.delete("/v1/keys/{key_id}", tags=["keys"], summary="Revoke an API key")
    def revoke_key(key_id: KeyId, _key: Admin, svc: Svc) -> schemas.KeyOut:
        return schemas.KeyOut(**_key_out(svc.store.revoke_key(key_id)))


# --- access ----------------------------------------------------------------------------------

ACCESS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["images"],
                    "properties": {
                        "images": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "One image or a burst (JPEG, PNG, BMP, WebP)",
                        }
                    },
                }
            },
            "application/json": {
                "schema": schemas.AccessImages.model_json_schema(),
                "example": {"images": ["/9j/4AAQSkZJRgABAQ..."]},
            },
        },
    }
}


async def _access_frames(request: Request, settings: Settings) -> list:
    declared = request.headers.get("content-type", "").split(";")[0].strip().lower()
    most = settings.max_burst_frames
    if declared == "multipart/form-data":
        try:
            form = await request.form(max_files=most + 1, max_fields=most + 1)
        except Exception as error:  # malformed multipart, or too many parts
            raise ApiError(422, "invalid_request", f"unreadable multipart body: {error}") from None
        files = [f for f in form.getlist("images") if hasattr(f, "read")]
        if not files:
            raise ApiError(422, "invalid_request", "send the frames as file parts named 'images'")
        if len(files) > most:
            raise ApiError(413, "too_many_frames", f"at most {most} frames per query")
        blobs = []
        for i, upload in enumerate(files):
            check_declared(upload.content_type, IMAGE_TYPES, f"image {i}")
            blobs.append(await upload.read())
        return await asyncio.to_thread(_decode_frames, blobs, settings)
    if declared == "application/json":
        try:
            body = schemas.AccessImages.model_validate_json(await request.body())
        except ValueError as error:
            raise ApiError(422, "invalid_request", f"invalid JSON body: {error}") from None
        if len(body.images) > most:
            raise ApiError(413, "too_many_frames", f"at most {most} frames per query")
        blobs = [decode_base64(text, f"image {i}") for i, text in enumerate(body.images)]
        return await asyncio.to_thread(_decode_frames, blobs, settings)
    raise ApiError(
        415,
        "unsupported_media_type",
        "send multipart/form-data (file parts named 'images') or application/json "
        '({"images": [base64, ...]})',
    )


def _decode_frames(blobs: list[bytes], settings: Settings) -> list:
    """Decoding runs on a worker thread: the event loop keeps answering health checks."""
    return [
        decode_image(data, settings.max_image_bytes, f"image {i}", settings.max_image_pixels)
        for i, data in enumerate(blobs)
    ]


def _access_routes(app: FastAPI) -> None:
    @app.post(
        "/v1/doors/{door}/access",
        tags=["access"],
        summary="May this face pass? One image or a short burst; records an access event",
        openapi_extra=ACCESS_BODY,
        responses={
            404: {"model": schemas.ErrorResponse},
            413: {"model": schemas.ErrorResponse},
            415: {"model": schemas.ErrorResponse},
            422: {"model": schemas.ErrorResponse},
            503: {"model": schemas.ErrorResponse, "description": "Models not ready"},
        },
    )
    async def access(
        door: DoorName, request: Request, key: DoorCaller, svc: Svc
    ) -> schemas.AccessOut:
        if key.scope == "door" and key.door != door:
            raise ApiError(
                403, "wrong_door", f"this key opens door {key.door!r} only, not {door!r}"
            )
        frames = await _access_frames(request, svc.settings)
        decision = await _decide(svc, frames, door)
        svc.metrics.decision(decision.decision, decision.latency_ms.get("total", 0.0) / 1000)
        out = schemas.AccessOut(
            event_id=decision.event_id,
            door=door,
            decision=decision.decision,
            granted=decision.granted,
            reason=decision.reason,
            person=(
                schemas.PersonRef(id=decision.person_id, display_name=decision.display_name)
                if decision.person_id is not None
                else None
            ),
            level=decision.level,
            required_level=decision.required_level,
            probability=decision.probability,
            latency_ms=decision.latency_ms,
            report_url=f"/v1/events/{decision.event_id}/report",
            report_html_url=f"/v1/events/{decision.event_id}/report.html",
        )
        svc.webhooks.send(
            {
                "type": "access_event",
                "created_at": decision.created_at.isoformat(),
                **out.model_dump(mode="json"),
            }
        )
        return out


def _busy(code: str, message: str, wait_s: float) -> ApiError:
    """503 with the wait in whole seconds, said the same in the message and in Retry-After."""
    wait = int(wait_s)
    return ApiError(503, code, f"{message}; retry in {wait} s", headers={"Retry-After": str(wait)})


async def _decide(svc: Service, frames: list, door: str):
    """The door query through the micro-batcher: refused at once when the queue is full, and
    answered 503 when it is not decided within the timeout."""
    await asyncio.to_thread(svc.store.door, door)  # 404 before any model work
    try:
        future = svc.batcher.submit(DoorQuery(frames, door))
    except Overloaded as error:
        svc.metrics.overloaded.inc()
        message = f"{error.queued} door queries are already waiting"
        raise _busy("overloaded", message, error.retry_after_s) from None
    limit = svc.settings.decision_timeout_s
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), limit)
    except (TimeoutError, TimedOut):
        svc.metrics.timed_out.inc()
        message = f"the decision took longer than {limit:g} s (the service is busy)"
        raise _busy(
            "decision_timeout", message, svc.batcher.retry_after(svc.batcher.queued)
        ) from None


# --- events ----------------------------------------------------------------------------------


def _event_out(e, door_names: dict[int, str]) -> schemas.EventOut:
    return schemas.EventOut(
        id=e.id,
        created_at=e.created_at,
        door=door_names.get(e.door_id),
        decision=e.decision,
        person_id=e.person_id,
        probability=e.probability,
        level=e.level,
        latency_ms=e.latency_ms,
        biometrics_erased=e.biometrics_erased,
        report_url=f"/v1/events/{e.id}/report",
    )


def _event_routes(app: FastAPI) -> None:
    tags = ["events"]

    @app.get("/v1/events", tags=tags, summary="The audit log, newest first, filtered and paged")
    def list_events(
        _key: Auditor,
        svc: Svc,
        door: Annotated[str | None, Query(max_length=100)] = None,
        person_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        decision: Annotated[str | None, Query(pattern="^(" + "|".join(DECISIONS) + ")$")] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        offset: Offset = 0,
        limit: Limit = 50,
    ) -> schemas.EventPage:
        door_id = svc.store.door(door).id if door is not None else None
        total, events = svc.store.events(door_id, person_id, decision, since, until, offset, limit)
        names = svc.store.door_names()
        items = [_event_out(e, names) for e in events]
        return schemas.EventPage(total=total, offset=offset, limit=limit, items=items)

    @app.get("/v1/events/{event_id}", tags=tags, summary="One access event")
    def get_event(event_id: EventId, _key: Auditor, svc: Svc) -> schemas.EventOut:
        e = svc.store.event(event_id)
        return _event_out(e, svc.store.door_names())

    @app.get(
        "/v1/events/{event_id}/report",
        tags=tags,
        summary="The event's scored confidence report (JSON; schema 1.0)",
    )
    def event_report(event_id: EventId, _key: Auditor, svc: Svc) -> dict:
        return svc.store.event(event_id).report or {}

    @app.get(
        "/v1/events/{event_id}/report.html",
        tags=tags,
        summary="The event's report as one HTML page",
        response_class=HTMLResponse,
    )
    def event_report_html(event_id: EventId, _key: Auditor, svc: Svc) -> HTMLResponse:
        from recognize import render_html

        report = svc.store.event(event_id).report
        if not report:
            raise ApiError(410, "report_erased", f"event {event_id} has no report")
        return HTMLResponse(render_html(report))


def openapi_json(app: FastAPI) -> str:
    return json.dumps(app.openapi(), indent=2)
