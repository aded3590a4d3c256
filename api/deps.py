"""What the routes share: error codes and responses, the Service (store, recognizer behind the
micro-batcher, jobs, webhooks, metrics, rate limits), the key check (`authorize`) and the typed
path and query parameters."""

import logging
import math
import threading
import time
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api import schemas
from api.batcher import MicroBatcher
from api.console.sessions import COOKIE, CSRF_HEADER, ConsoleSessions
from api.jobs import make_jobs
from api.metrics import ServiceMetrics
from api.mqtt import MqttPublisher
from api.uploads import ApiError
from api.webhooks import WebhookSender
from db import KeyInfo, Store
from facegate.errors import FacegateError
from facegate.settings import Settings
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
        self.buckets: dict[int | str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def take(self, key_id: int | str) -> float:
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
        self.webhooks = WebhookSender(settings, self.store)
        self.webhooks.start()  # deliveries an earlier process left in the outbox go out now
        self.mqtt = MqttPublisher(settings)
        self.mqtt.start()  # connects in the background: a broker that is down is retried
        self.jobs = make_jobs(self.store, settings, pipeline, events=self.mqtt.job_event)
        self.metrics = ServiceMetrics(self.webhooks, self.mqtt)
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
        self.console = ConsoleSessions(settings.console_session_hours)
        self.sign_in_limiter = RateLimiter(30)  # console sign-in attempts per client address
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
        self.mqtt.close()


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
        if not secret:  # a console session: the browser holds a token, the server the key
            secret = svc.console.key(request.cookies.get(COOKIE))
            unsafe = request.method not in ("GET", "HEAD", "OPTIONS")
            if secret and unsafe and request.headers.get(CSRF_HEADER) != "1":
                raise ApiError(
                    403,
                    "console_header_missing",
                    f"a console request that changes something carries {CSRF_HEADER}: 1",
                )
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
