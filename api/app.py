"""The door-access HTTP service (FastAPI), versioned under /v1. `create_app()` builds it;
`facegate serve` runs it under uvicorn.

Every route but /healthz and /readyz needs an API key (X-API-Key, or Authorization: Bearer).
Scopes: admin (everything), door (its own door's access endpoint), audit (events, reports,
metrics). Errors are JSON {"error": {"code", "message"}} with a stable code, never a trace.
"""

import asyncio
import errno
import json
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.console import routes as console
from api.deps import ERROR_RESPONSES, Service, error_response, log, status_for
from api.routes import access, doors, enrollments, evaluation, events, health, persons
from api.uploads import ApiError
from db import Store
from facegate.errors import FacegateError
from facegate.settings import Settings, get_settings


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
    for module in (health, persons, enrollments, doors, access, events, evaluation):
        app.include_router(module.router)
    app.include_router(console.router)
    app.mount("/console/static", console.static, name="console-static")
    return app


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


def openapi_json(app: FastAPI) -> str:
    return json.dumps(app.openapi(), indent=2)
