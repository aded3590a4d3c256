"""Enrollment jobs: one function does the work (`run_enrollment_job`); a runner decides where.

- `InProcessJobs` (default): one worker thread inside the API process. Training uses every core,
  so jobs run one at a time. Jobs left unfinished by a restart are failed, with the reason, when
  the service starts again.
- `CeleryJobs` (FACEGATE_JOBS=celery): the API queues the job over Redis; a worker on any machine
  that shares the database and FACEGATE_DATA_DIR runs it:
      celery -A api.jobs:celery_app worker --pool solo --concurrency 1 -Q facegate
  A job whose worker stops has no heartbeat any more; it is failed after JOB_STALE_SECONDS.
"""

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from db import Store
from facegate.errors import FacegateError
from facegate.settings import Settings, get_settings
from facegate.urls import without_credentials

log = logging.getLogger("facegate.jobs")


class JobsUnavailableError(FacegateError):
    code = "jobs_unavailable"


# What an enrollment job event says (MQTT): the row's changes, less the report and the grid.
JOB_EVENT_FIELDS = ("status", "stage", "progress", "person_id", "error_code", "error")
# Share of the job's progress bar each stage ends at (reading and detection come first).
STAGE_END = {
    "reading the clip": 0.15,
    "personal GAN": 0.5,
    "personal discriminator": 0.8,
    "general discriminator": 0.98,
}
RESTART_REASON = (
    "the facegate service restarted while this enrollment was queued or running; nothing was "
    "stored: submit the clip again"
)


def sample_grid(samples: np.ndarray, columns: int = 8) -> bytes:
    """A PNG of up to 32 synthesized faces, `columns` to a row."""
    samples = samples[:32]
    rows = -(-len(samples) // columns)
    side = samples.shape[1]
    grid = np.full((rows * side, columns * side, 3), 255, np.uint8)
    for i, face in enumerate(samples):
        r, c = divmod(i, columns)
        grid[r * side : (r + 1) * side, c * side : (c + 1) * side] = face
    ok, png = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    assert ok
    return png.tobytes()


class _Heartbeat:
    """Training progress into the job row, at most once a second (also the job's heartbeat)."""

    def __init__(self, update: Callable[..., None]):
        self.update, self.last = update, 0.0
        self.starts = dict(zip(STAGE_END, [0.0, *list(STAGE_END.values())[:-1]], strict=True))

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < 1.0 and done != total:
            return
        self.last = now
        start, end = self.starts.get(stage, 0.0), STAGE_END.get(stage, 0.98)
        share = start + (end - start) * done / max(total, 1)
        self.update(stage=stage, progress=round(share, 3))


def run_enrollment_job(
    store: Store,
    settings: Settings,
    job_id: str,
    name: str,
    source: dict,
    external_id: str | None = None,
    pipeline=None,
    events: Callable[[dict], None] | None = None,
) -> None:
    """Enroll `name` from `source` ({"video": path, "upload": bool} or {"url": stream}) and
    record the outcome in the job row; never raises for a bad clip (the job says what was wrong).
    Each change of the row is also given to `events` (MQTT), without the report and the grid."""
    from enroll import enroll
    from enroll.personal import store_enrollment
    from facegate.urls import checked_source_url
    from gan.stored import StoredGenerator
    from recognize import FacePipeline

    upload = Path(source["video"]) if source.get("upload") else None

    def update(**fields) -> None:
        store.update_job(job_id, **fields)
        if events is not None:
            said = {k: v for k, v in fields.items() if k in JOB_EVENT_FIELDS}
            events({"type": "enrollment_job", "job_id": job_id, "display_name": name, **said})

    try:
        update(status="running", stage="reading the clip", progress=0.01)
        url = source.get("url")
        if url:  # checked again here: the address may have changed, and redirects are followed
            url = checked_source_url(url, settings.source_url_allow.split(","))
        pipeline = pipeline or FacePipeline(settings)
        result = enroll(
            name, video=source.get("video"), url=url, settings=settings, pipeline=pipeline
        )
        update(stage="personal GAN", progress=STAGE_END["reading the clip"])
        person_id, models = store_enrollment(
            store, result, pipeline, settings, external_id, progress=_Heartbeat(update)
        )
        generator = StoredGenerator.from_bytes(store.artifact(person_id, "generator"))
        report = {
            "person_id": person_id,
            "enrollment": result.summary(),
            "models": models,
            "frames": [r.as_dict() for r in result.frames],
        }
        update(
            status="succeeded",
            stage="done",
            progress=1.0,
            person_id=person_id,
            metrics=_plain(report),
            sample_grid=sample_grid(generator.samples(32, seed=7)),
        )
    except FacegateError as error:
        update(status="failed", stage="failed", error_code=error.code, error=error.message)
    except Exception as error:  # the job row must never be left running
        log.exception("enrollment job %s failed", job_id)
        update(
            status="failed",
            stage="failed",
            error_code="internal_error",
            error=f"enrollment failed unexpectedly ({type(error).__name__}); see the service log",
        )
    finally:
        if upload is not None:
            upload.unlink(missing_ok=True)


def _plain(value):
    """JSON-safe: numpy scalars and arrays become Python numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


class InProcessJobs:
    """One worker thread in this process; unfinished jobs of an earlier process are failed."""

    def __init__(self, store: Store, settings: Settings, pipeline=None, events=None):
        self.store, self.settings, self.pipeline = store, settings, pipeline
        self.events = events
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facegate-enroll")
        failed = store.fail_jobs(RESTART_REASON)
        if failed:
            log.warning("marked %d unfinished enrollment job(s) failed after a restart", failed)
        # their clips, and those of requests a kill cut short, will never be read
        removed = store.remove_stale_uploads(min_age_s=0)
        if removed:
            log.warning("removed %d uploaded clip(s) no job will read", removed)

    def submit(self, job_id: str, name: str, source: dict, external_id: str | None) -> None:
        self.pool.submit(
            run_enrollment_job,
            self.store,
            self.settings,
            job_id,
            name,
            source,
            external_id,
            self.pipeline,
            self.events,
        )

    def sweep(self) -> None:
        pass  # every unfinished job is this process's own, and alive

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class CeleryJobs:
    """Jobs queued over Redis for Celery workers."""

    def __init__(self, store: Store, settings: Settings):
        self.store, self.settings = store, settings
        self.app = make_celery(settings.redis_url)

    def submit(self, job_id: str, name: str, source: dict, external_id: str | None) -> None:
        try:
            self.app.send_task(
                "facegate.enroll",
                args=[job_id, name, source, external_id],
                queue=self.settings.celery_queue,
                retry=False,
            )
        except Exception as error:  # the broker is down or unreachable
            where = without_credentials(self.settings.redis_url)
            self.store.update_job(
                job_id,
                status="failed",
                stage="failed",
                error_code="jobs_unavailable",
                error=f"the job queue at {where} cannot be reached ({type(error).__name__}); "
                "nothing was stored",
            )
            raise JobsUnavailableError(
                f"the enrollment job queue ({where}) cannot be reached: start Redis or set "
                "FACEGATE_JOBS=inprocess"
            ) from error

    def sweep(self) -> None:
        self.store.fail_jobs(
            f"no progress for {self.settings.job_stale_seconds:.0f} s: the worker running it "
            "stopped; nothing was stored: submit the clip again",
            stale_seconds=self.settings.job_stale_seconds,
        )
        self.store.remove_stale_uploads()

    def close(self) -> None:
        pass


def make_celery(broker: str):
    from celery import Celery

    app = Celery("facegate", broker=broker)
    app.conf.update(
        task_acks_late=False,  # a job is not retried blindly: a lost one is failed and said so
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        task_ignore_result=True,
    )

    @app.task(name="facegate.enroll")
    def enroll_task(job_id: str, name: str, source: dict, external_id: str | None) -> None:
        from api.mqtt import MqttPublisher

        settings = get_settings()
        store = Store(settings)
        mqtt = MqttPublisher(settings)  # the worker publishes its jobs' events itself
        try:
            events = mqtt.job_event if mqtt.enabled else None
            run_enrollment_job(store, settings, job_id, name, source, external_id, events=events)
        finally:
            mqtt.close(timeout=5.0)
            store.close()

    return app


def make_jobs(store: Store, settings: Settings, pipeline=None, events=None):
    """The job runner the settings name; `events` (in-process jobs) hears every job change. A
    Celery worker publishes its jobs' events to the MQTT broker itself."""
    if settings.jobs == "celery":
        return CeleryJobs(store, settings)
    return InProcessJobs(store, settings, pipeline, events)


def __getattr__(name: str):
    # `celery -A api.jobs:celery_app worker`: the worker's app, built from the settings on demand
    if name == "celery_app":
        return make_celery(get_settings().redis_url)
    raise AttributeError(name)
