"""Doors, their access policies, and API keys."""

from fastapi import APIRouter

from api import schemas
from api.deps import Admin, DoorName, KeyId, PolicyId, Service, Svc
from api.uploads import ApiError
from db import KeyInfo
from db.models import AccessPolicy, Door


def _door_out(door: Door) -> schemas.DoorOut:
    return schemas.DoorOut(
        id=door.id,
        name=door.name,
        required_level=door.required_level,
        require_liveness=door.require_liveness,
        region=door.region,
        description=door.description,
        webhook_url=door.webhook_url,
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


router = APIRouter()


@router.post("/v1/doors", tags=["doors"], status_code=201, summary="Create a door")
def create_door(body: schemas.DoorIn, _key: Admin, svc: Svc) -> schemas.DoorOut:
    if any(d.name == body.name for d in svc.store.doors()):
        raise ApiError(409, "door_exists", f"a door named {body.name!r} exists already")
    svc.store.add_door(
        body.name,
        body.required_level,
        body.require_liveness,
        body.region,
        body.description,
        body.webhook_url,
        body.webhook_secret,
    )
    return _door_out(_door_row(svc, body.name))


@router.get("/v1/doors", tags=["doors"], summary="All doors")
def list_doors(_key: Admin, svc: Svc) -> list[schemas.DoorOut]:
    return [_door_out(d) for d in svc.store.doors()]


@router.get("/v1/doors/{door}", tags=["doors"], summary="One door")
def get_door(door: DoorName, _key: Admin, svc: Svc) -> schemas.DoorOut:
    return _door_out(_door_row(svc, door))


@router.delete(
    "/v1/doors/{door}",
    tags=["doors"],
    summary="Remove a door with its policies and door keys; its events stay",
)
def delete_door(door: DoorName, _key: Admin, svc: Svc) -> schemas.Deleted:
    svc.store.delete_door(door)
    return schemas.Deleted(deleted=door)


@router.put("/v1/doors/{door}/webhook", tags=["doors"], summary="Set the door's own webhook")
def set_door_webhook(
    door: DoorName, body: schemas.DoorWebhookIn, _key: Admin, svc: Svc
) -> schemas.DoorOut:
    svc.store.set_door_webhook(door, body.url, body.secret)
    return _door_out(_door_row(svc, door))


@router.delete("/v1/doors/{door}/webhook", tags=["doors"], summary="Remove the door's webhook")
def delete_door_webhook(door: DoorName, _key: Admin, svc: Svc) -> schemas.DoorOut:
    svc.store.set_door_webhook(door, None, None)
    return _door_out(_door_row(svc, door))


@router.post(
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


@router.get("/v1/doors/{door}/policies", tags=["policies"], summary="A door's policies")
def list_policies(door: DoorName, _key: Admin, svc: Svc) -> list[schemas.PolicyOut]:
    row = _door_row(svc, door)
    return [_policy_out(p, door) for p in svc.store.policies(row.id)]


@router.delete("/v1/policies/{policy_id}", tags=["policies"], summary="Revoke a policy")
def delete_policy(policy_id: PolicyId, _key: Admin, svc: Svc) -> schemas.Deleted:
    svc.store.delete_policy(policy_id)
    return schemas.Deleted(deleted=policy_id)


@router.post(
    "/v1/keys",
    tags=["keys"],
    status_code=201,
    summary="Create an API key (the secret is in this answer only)",
)
def create_key(body: schemas.KeyIn, _key: Admin, svc: Svc) -> schemas.KeyCreated:
    secret, key = svc.store.create_key(body.name, body.scope, body.door)
    return schemas.KeyCreated(key=secret, **_key_out(key))


@router.get("/v1/keys", tags=["keys"], summary="All API keys (never their secrets)")
def list_keys(_key: Admin, svc: Svc) -> list[schemas.KeyOut]:
    return [schemas.KeyOut(**_key_out(k)) for k in svc.store.api_keys()]


@router.delete("/v1/keys/{key_id}", tags=["keys"], summary="Revoke an API key")
def revoke_key(key_id: KeyId, _key: Admin, svc: Svc) -> schemas.KeyOut:
    return schemas.KeyOut(**_key_out(svc.store.revoke_key(key_id)))
