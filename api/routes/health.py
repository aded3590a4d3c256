"""Liveness and readiness."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from api import schemas
from api.deps import Auditor, Svc
from facegate.errors import FacegateError

router = APIRouter()


@router.get("/healthz", tags=["health"], summary="Liveness: the process answers")
def healthz() -> schemas.Health:
    return schemas.Health(status="ok")


@router.get(
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


@router.get(
    "/metrics",
    tags=["health"],
    summary="Prometheus metrics: requests, decisions, latency",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def metrics(_key: Auditor, svc: Svc) -> Response:
    body, content_type = svc.metrics.render()
    return Response(body, media_type=content_type)
