"""The door access endpoint: one frame or a burst in, a decision out."""

import asyncio

from fastapi import APIRouter, Request

from api import schemas
from api.batcher import Overloaded, TimedOut
from api.deps import DoorCaller, DoorName, Service, Svc
from api.uploads import IMAGE_TYPES, ApiError, check_declared, decode_base64, decode_image
from facegate.settings import Settings
from recognize.recognizer import Query as DoorQuery

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


router = APIRouter()


@router.post(
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
async def access(door: DoorName, request: Request, key: DoorCaller, svc: Svc) -> schemas.AccessOut:
    if key.scope == "door" and key.door != door:
        raise ApiError(403, "wrong_door", f"this key opens door {key.door!r} only, not {door!r}")
    frames = await _access_frames(request, svc.settings)
    decision = await _decide(svc, frames, door)
    svc.metrics.decision(decision.decision, decision.latency_ms.get("total", 0.0) / 1000)
    event = decision.event(decision.event_id)
    # its webhook deliveries were written with the event (the outbox): wake the sender for them
    svc.webhooks.notify()
    svc.mqtt.access_event(door, event)
    return schemas.AccessOut.model_validate(
        {k: v for k, v in event.items() if k not in ("type", "created_at")}
    )


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
