"""The audit log: access events and their reports."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from api import schemas
from api.deps import MAX_ID, Auditor, EventId, Limit, Offset, Svc
from api.uploads import ApiError
from recognize.decision import DECISIONS


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


router = APIRouter(tags=["events"])


@router.get("/v1/events", summary="The audit log, newest first, filtered and paged")
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


@router.get("/v1/events/{event_id}", summary="One access event")
def get_event(event_id: EventId, _key: Auditor, svc: Svc) -> schemas.EventOut:
    e = svc.store.event(event_id)
    return _event_out(e, svc.store.door_names())


@router.get(
    "/v1/events/{event_id}/report",
    summary="The event's scored confidence report (JSON; schema 1.0)",
)
def event_report(event_id: EventId, _key: Auditor, svc: Svc) -> dict:
    return svc.store.event(event_id).report or {}


@router.get(
    "/v1/events/{event_id}/report.html",
    summary="The event's report as one HTML page",
    response_class=HTMLResponse,
)
def event_report_html(event_id: EventId, _key: Auditor, svc: Svc) -> HTMLResponse:
    from recognize import render_html

    report = svc.store.event(event_id).report
    if not report:
        raise ApiError(410, "report_erased", f"event {event_id} has no report")
    return HTMLResponse(render_html(report))
