"""The security-level table and the last `facegate eval`: what the console's evaluation page shows."""

import json
from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import Response

from api import schemas
from api.deps import Auditor, Svc
from api.render import EVAL_FILES, eval_dir
from api.uploads import ApiError

router = APIRouter(tags=["evaluation"])


@router.get(
    "/v1/levels",
    summary="The 1-10 security-level table in use (what `facegate calibrate` measured)",
    responses={404: {"model": schemas.ErrorResponse}},
)
def levels(_key: Auditor, svc: Svc) -> schemas.LevelsOut:
    saved = svc.store.level_table(svc.settings.embedder)
    if saved is None:
        raise ApiError(404, "levels_not_calibrated", "no level table yet: run `facegate calibrate`")
    from recognize.levels import LevelTable

    table = LevelTable.from_dict(saved)
    return schemas.LevelsOut(
        source=saved["source"],
        impostor_trials=saved["impostor_trials"],
        created_at=saved["created_at"],
        rows=table.rows(),
    )


@router.get(
    "/v1/evaluation",
    summary="The last `facegate eval`: its summary (Markdown) and headline figures",
    responses={404: {"model": schemas.ErrorResponse}},
)
def evaluation(_key: Auditor, svc: Svc) -> schemas.EvaluationOut:
    folder = eval_dir(svc.settings)
    summary = folder / EVAL_FILES[0]
    if not summary.is_file():
        raise ApiError(
            404, "no_evaluation", "no evaluation yet: run `facegate eval --data <folder>`"
        )
    results = json.loads((folder / EVAL_FILES[1]).read_text())
    return schemas.EvaluationOut(
        created_at=datetime.fromtimestamp(summary.stat().st_mtime, UTC),
        summary_markdown=summary.read_text(),
        seconds=results.get("seconds", {}).get("total"),
        det_url="/v1/evaluation/det.png",
    )


@router.get(
    "/v1/evaluation/det.png",
    summary="The last evaluation's DET plot (PNG)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 404: {"model": schemas.ErrorResponse}},
)
def evaluation_det(_key: Auditor, svc: Svc) -> Response:
    plot = eval_dir(svc.settings) / EVAL_FILES[2]
    if not plot.is_file():
        raise ApiError(404, "no_evaluation", "no evaluation yet: run `facegate eval`")
    return Response(plot.read_bytes(), media_type="image/png")
