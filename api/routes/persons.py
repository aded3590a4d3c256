"""Enrolled persons: list, search, read, rename, delete."""

from typing import Annotated

from fastapi import APIRouter, Query

from api import schemas
from api.deps import Admin, Limit, Offset, PersonId, Svc


def _person_out(person, samples: int) -> schemas.PersonOut:
    return schemas.PersonOut(
        id=person.id,
        display_name=person.display_name,
        external_id=person.external_id,
        status=person.status,
        samples=samples,
        created_at=person.created_at,
    )


router = APIRouter(tags=["persons"])


@router.get("/v1/persons", summary="Enrolled persons, paged and searchable")
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


@router.get("/v1/persons/{person_id}", summary="One person")
def get_person(person_id: PersonId, _key: Admin, svc: Svc) -> schemas.PersonOut:
    return _person_out(*svc.store.person(person_id))


@router.patch("/v1/persons/{person_id}", summary="Rename a person")
def rename_person(
    person_id: PersonId, body: schemas.PersonRename, _key: Admin, svc: Svc
) -> schemas.PersonOut:
    svc.store.rename_person(person_id, body.display_name)
    return _person_out(*svc.store.person(person_id))


@router.delete(
    "/v1/persons/{person_id}",
    summary="Delete a person with their biometric data (samples, models, index entry; "
    "past events keep time, door and decision only)",
)
def delete_person(person_id: PersonId, _key: Admin, svc: Svc) -> schemas.Deleted:
    svc.store.delete_person(person_id)
    svc.forget(person_id)
    return schemas.Deleted(deleted=person_id)
