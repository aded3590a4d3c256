"""The `facegate` command line: init, enroll, recognize, calibrate, serve, persons, doors, keys,
events, report, db, and the end-to-end demo."""

import json
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from api.render import EVAL_FILES, eval_dir, format_decision, format_enrollment, format_levels
from facegate.errors import FacegateError, NotBuiltYetError
from facegate.settings import get_settings

app = typer.Typer(
    help="facegate: face-recognition door access with personal GAN-trained discriminators.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else.")
]


class ProgressLine:
    """Training progress on one stderr line per stage (a bar for people; silent for --json)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.stage: str | None = None
        self.filled = -1

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if stage != self.stage and self.stage is not None:
            sys.stderr.write("\n")
        filled = int(30 * done / max(total, 1))
        if stage == self.stage and filled == self.filled and done != total:
            return  # at most 31 writes per stage, so logs stay short
        self.stage, self.filled = stage, filled
        sys.stderr.write(f"\r{stage:<24} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
        if done == total:
            sys.stderr.write("\n")
            self.stage = None
        sys.stderr.flush()


def _emit(obj: dict, as_json: bool, text: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(obj, default=_jsonable) + "\n")
    else:
        typer.echo(text)


def _jsonable(value: object) -> object:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _fail(error: FacegateError, as_json: bool) -> None:
    """Print a facegate error the way the user asked and exit non-zero, without a traceback."""
    if as_json:
        sys.stdout.write(
            json.dumps({"ok": False, "error": {"code": error.code, "message": error.message}})
            + "\n"
        )
    else:
        typer.echo(f"error [{error.code}]: {error.message}", err=True)
    raise typer.Exit(3 if isinstance(error, NotBuiltYetError) else 1)


db_app = typer.Typer(
    help="The database: schema migrations, consistency check, retention purge.",
    no_args_is_help=True,
)
persons_app = typer.Typer(
    help="Enrolled persons: list, delete (with their biometric data).", no_args_is_help=True
)
doors_app = typer.Typer(
    help="Doors and who may pass them: add, list, delete, allow.", no_args_is_help=True
)
keys_app = typer.Typer(
    help="API keys: create (admin, door, audit), list, revoke.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(persons_app, name="persons")
app.add_typer(doors_app, name="doors")
app.add_typer(keys_app, name="keys")


def _open_store(as_json: bool):
    """The store named by the settings; an out-of-date schema is refused with the command to run."""
    from db import Store

    try:
        return Store(get_settings())
    except FacegateError as error:
        _fail(error, as_json)


@app.command()
def init(as_json: JsonOption = False) -> None:
    """Create the data folder (FACEGATE_DATA_DIR) and bring the database schema up to date."""
    from db import upgrade
    from db.engine import make_engine, sqlite_url

    settings = get_settings()
    data_dir = settings.data_dir.resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(FacegateError(f"cannot create data folder {data_dir}: {exc.strerror}"), as_json)
    url = settings.database_url or sqlite_url(data_dir)
    revision = upgrade(make_engine(url))
    obj = {"ok": True, "data_dir": str(data_dir), "schema": revision}
    _emit(obj, as_json, f"data folder ready: {data_dir}\ndatabase schema: {revision}")


@db_app.command("upgrade")
def db_upgrade(as_json: JsonOption = False) -> None:
    """Apply the schema migrations to the configured database (FACEGATE_DATABASE_URL or SQLite)."""
    from db import upgrade
    from db.engine import make_engine, sqlite_url

    settings = get_settings()
    url = settings.database_url or sqlite_url(settings.data_dir)
    try:
        revision = upgrade(make_engine(url))
    except Exception as exc:  # a wrong URL or an unreachable server, in the driver's own words
        _fail(FacegateError(f"cannot upgrade the database: {exc}"), as_json)
    _emit({"ok": True, "schema": revision}, as_json, f"database schema: {revision}")


@db_app.command("check")
def db_check(as_json: JsonOption = False) -> None:
    """Report every disagreement between database, artifact files and vector index (exit 1 if any)."""
    store = _open_store(as_json)
    report = store.check()
    obj = {
        "ok": report.clean,
        "problems": report.problems,
        "persons": report.persons,
        "samples": report.samples,
        "artifacts": report.artifacts,
        "db_version": report.db_version,
    }
    text = (
        f"{report.persons} persons, {report.samples} samples, {report.artifacts} artifacts, version {report.db_version}: "
        + ("consistent" if report.clean else "\n  " + "\n  ".join(report.problems))
    )
    _emit(obj, as_json, text)
    if not report.clean:
        raise typer.Exit(1)


@db_app.command("purge")
def db_purge(as_json: JsonOption = False) -> None:
    """Apply the retention settings: delete old access events, drop old stored query images."""
    result = _open_store(as_json).purge()
    _emit(
        {"ok": True, **result},
        as_json,
        ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in result.items()),
    )


@persons_app.command("list")
def persons_list(
    offset: Annotated[int, typer.Option(help="Skip this many.")] = 0,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Enrolled persons with their sample counts."""
    rows = _open_store(as_json).persons(offset, limit)
    items = [
        {
            "id": p.id,
            "display_name": p.display_name,
            "external_id": p.external_id,
            "status": p.status,
            "samples": n,
        }
        for p, n in rows
    ]
    text = "\n".join(
        f"{i['id']:6d}  {i['display_name']}  ({i['samples']} samples, {i['status']})" for i in items
    )
    _emit({"ok": True, "persons": items}, as_json, text or "no persons enrolled")


@persons_app.command("delete")
def persons_delete(
    person_id: Annotated[int, typer.Argument(help="The person's id.")], as_json: JsonOption = False
) -> None:
    """Delete a person with their samples, models and index entry; past events keep only time,
    door and decision."""
    store = _open_store(as_json)
    try:
        store.delete_person(person_id)
    except FacegateError as error:
        _fail(error, as_json)
    _emit(
        {"ok": True, "deleted": person_id},
        as_json,
        f"deleted person {person_id} and their biometric data",
    )


@app.command()
def enroll(
    name: Annotated[str, typer.Option("--name", help="The person's display name.")],
    video: Annotated[
        Path | None, typer.Option("--video", help="A video file of the person turning their head.")
    ] = None,
    camera: Annotated[
        int | None, typer.Option("--camera", help="A camera index to record from.")
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="An RTSP/HTTP stream to record from.")
    ] = None,
    photos: Annotated[
        Path | None, typer.Option("--photos", help="A folder of still photos (fallback).")
    ] = None,
    external_id: Annotated[
        str | None, typer.Option("--external-id", help="Your own id for the person (unique).")
    ] = None,
    frames: Annotated[
        bool, typer.Option("--frames", help="Also print the per-frame quality table.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Enroll a person from a clip (or photos): prints frames read and kept, pose coverage per yaw bin,
    and why frames were dropped."""
    from enroll import enroll as run_enrollment
    from enroll.personal import store_enrollment
    from recognize import FacePipeline

    if not name.strip():
        _fail(FacegateError("--name must not be empty"), as_json)
    store = _open_store(as_json)  # before the work: a missing schema is said at once
    settings = get_settings()
    pipeline = FacePipeline(settings)
    try:
        result = run_enrollment(
            name.strip(),
            video=video,
            camera=camera,
            url=url,
            photos=photos,
            settings=settings,
            pipeline=pipeline,
        )
        person_id, models = store_enrollment(
            store, result, pipeline, settings, external_id, progress=ProgressLine(not as_json)
        )
    except FacegateError as error:
        _fail(error, as_json)
    summary = result.summary()
    summary["person_id"] = person_id
    summary["models"] = models
    obj = {"ok": True, "enrollment": summary, "frames": [r.as_dict() for r in result.frames]}
    _emit(obj, as_json, format_enrollment(summary, result.frames if frames else None))


def _read_images(paths: list[Path], max_pixels: int) -> list:
    import cv2

    from facegate.errors import SourceNotFoundError
    from facegate.images import read_image_file

    frames = []
    for path in paths:
        if not path.is_file():
            raise SourceNotFoundError(f"image {path} does not exist")
        frames.append(cv2.cvtColor(read_image_file(path, max_pixels), cv2.COLOR_BGR2RGB))
    return frames


@app.command()
def recognize(
    images: Annotated[list[Path], typer.Argument(help="One image, or a short burst of frames.")],
    door: Annotated[str | None, typer.Option("--door", help="The door asking.")] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write the HTML report here.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Decide grant / unknown / spoof_suspected / not_authorized for a face at a door; records
    the access event and prints the scored report."""
    from recognize import Recognizer, build_report, render_html

    store = _open_store(as_json)
    try:
        frames = _read_images(images, store.settings.max_image_pixels)
        decision = Recognizer(store).identify(frames, door=door)
    except FacegateError as error:
        _fail(error, as_json)
    full = build_report(decision)
    if report is not None:
        report.write_text(render_html(full))
    full.pop("face_crop_png")
    obj = {"ok": True, "event_id": decision.event_id, "report": full}
    _emit(obj, as_json, format_decision(full, decision.event_id, report))


@app.command()
def calibrate(
    faces: Annotated[
        Path,
        typer.Option(
            "--faces",
            help="Photos of people who will never be enrolled, one sub-folder per identity "
            "(or one flat folder of photos, each a different person).",
        ),
    ],
    max_identities: Annotated[
        int | None, typer.Option("--max-identities", help="Use only the first N identities.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Calibrate the 1-10 security levels on impostor trials against everyone enrolled."""
    from enroll import read_photos
    from recognize import Recognizer
    from recognize.calibration import face_set

    store = _open_store(as_json)
    settings = get_settings()
    try:
        if not faces.is_dir():
            raise FacegateError(f"--faces {faces} is not a folder")
        folders = sorted(p for p in faces.iterdir() if p.is_dir())[:max_identities]

        def photos():
            for folder in folders:
                for frame in read_photos(
                    folder, settings.frame_max_side_px, settings.max_image_pixels
                ).frames:
                    yield frame, folder.name
            if not folders:
                read = read_photos(faces, settings.frame_max_side_px, settings.max_image_pixels)
                yield from zip(read.frames, read.names, strict=True)

        recognizer = Recognizer(store)
        found = face_set(photos(), recognizer.pipeline, gate=recognizer.quality_gate).usable()
        table = recognizer.calibrate(found, str(faces))
    except ValueError as error:
        _fail(FacegateError(str(error)), as_json)
    except FacegateError as error:
        _fail(error, as_json)
    obj = {
        "ok": True,
        "faces": len(found),
        "poor_quality": found.poor_quality,
        "impostor_trials": table.impostor_trials,
        "levels": table.rows(),
    }
    refused = sum(found.poor_quality.values())
    text = f"{len(found)} faces calibrate" + (
        f"; {refused} left out by the quality gate {found.poor_quality}" if refused else ""
    )
    _emit(
        obj, as_json, text + "\n" + format_levels(table.rows(), table.source, table.impostor_trials)
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
) -> None:
    """Run the door-access HTTP API (uvicorn; OpenAPI at /docs and /openapi.json)."""
    import uvicorn

    from api.app import create_app
    from db.store import check_data_folder

    store = _open_store(False)  # an uninitialised or out-of-date database is refused here
    try:  # a door service that cannot record its events does not start
        check_data_folder(store.settings.data_dir, min_free_bytes=100_000_000)
    except FacegateError as error:
        _fail(error, False)
    app = create_app(get_settings(), store, warm=True)
    uvicorn.run(app, host=host, port=port, log_level="info")


@doors_app.command("add")
def doors_add(
    name: Annotated[str, typer.Argument(help="The door's name (letters, digits, _ . -).")],
    level: Annotated[
        int, typer.Option("--level", min=1, max=10, help="Required security level 1-10.")
    ] = 6,
    liveness: Annotated[
        bool, typer.Option("--liveness", help="Require a head-turn burst at this door.")
    ] = False,
    description: Annotated[str | None, typer.Option("--description")] = None,
    webhook_url: Annotated[
        str | None, typer.Option("--webhook-url", help="The door's own webhook receiver.")
    ] = None,
    webhook_secret: Annotated[
        str | None,
        typer.Option(
            "--webhook-secret",
            envvar="FACEGATE_DOOR_WEBHOOK_SECRET",
            help="Signs the door's deliveries (16-200 characters); or the environment variable.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a door."""
    store = _open_store(as_json)
    try:
        door = store.add_door(name, level, liveness, None, description, webhook_url, webhook_secret)
    except FacegateError as error:
        _fail(error, as_json)
    _emit(
        {"ok": True, "door": {"id": door.id, "name": door.name, "required_level": level}},
        as_json,
        f"door {door.name!r} (id {door.id}) needs level {level}"
        + (" and a head turn" if liveness else ""),
    )


@doors_app.command("list")
def doors_list(as_json: JsonOption = False) -> None:
    """All doors."""
    doors = _open_store(as_json).doors()
    items = [
        {
            "id": d.id,
            "name": d.name,
            "required_level": d.required_level,
            "require_liveness": d.require_liveness,
        }
        for d in doors
    ]
    text = "\n".join(
        f"{d['id']:4d}  {d['name']}  level {d['required_level']}"
        + (", head turn" if d["require_liveness"] else "")
        for d in items
    )
    _emit({"ok": True, "doors": items}, as_json, text or "no doors")


@doors_app.command("delete")
def doors_delete(name: str, as_json: JsonOption = False) -> None:
    """Remove a door with its policies and door keys (its events stay)."""
    store = _open_store(as_json)
    try:
        store.delete_door(name)
    except FacegateError as error:
        _fail(error, as_json)
    _emit({"ok": True, "deleted": name}, as_json, f"deleted door {name!r}")


@doors_app.command("allow")
def doors_allow(
    door: Annotated[str, typer.Argument(help="The door.")],
    person_id: Annotated[int, typer.Argument(help="The person's id.")],
    weekdays: Annotated[str, typer.Option(help="Digits, Monday = 0.")] = "0123456",
    as_json: JsonOption = False,
) -> None:
    """Let a person through a door (on the given weekdays, at any time)."""
    store = _open_store(as_json)
    try:
        store.check_person_exists(person_id)
        policy = store.allow(store.door(door).id, person_id=person_id, weekdays=weekdays)
    except FacegateError as error:
        _fail(error, as_json)
    _emit(
        {"ok": True, "policy_id": policy},
        as_json,
        f"policy {policy}: person {person_id} may pass {door!r}",
    )


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="Who or what holds the key.")],
    scope: Annotated[str, typer.Option("--scope", help="admin, door or audit.")],
    door: Annotated[str | None, typer.Option("--door", help="The door a door key opens.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key; its secret is printed once and only its SHA-256 is stored."""
    store = _open_store(as_json)
    try:
        secret, key = store.create_key(name, scope, door)
    except FacegateError as error:
        _fail(error, as_json)
    _emit(
        {"ok": True, "id": key.id, "key": secret, "scope": key.scope, "door": key.door},
        as_json,
        f"{key.scope} key {key.id} ({key.name}): {secret}\n(shown once: store it now)",
    )


@keys_app.command("list")
def keys_list(as_json: JsonOption = False) -> None:
    """All API keys (prefixes only)."""
    keys = _open_store(as_json).api_keys()
    items = [
        {
            "id": k.id,
            "name": k.name,
            "prefix": k.prefix,
            "scope": k.scope,
            "door": k.door,
            "revoked": k.revoked_at is not None,
        }
        for k in keys
    ]
    text = "\n".join(
        f"{k['id']:4d}  {k['prefix']}...  {k['scope']:<5}  {k['name']}"
        + (f" (door {k['door']})" if k["door"] else "")
        + (" REVOKED" if k["revoked"] else "")
        for k in items
    )
    _emit({"ok": True, "keys": items}, as_json, text or "no keys")


@keys_app.command("revoke")
def keys_revoke(key_id: int, as_json: JsonOption = False) -> None:
    """Revoke an API key at once."""
    store = _open_store(as_json)
    try:
        store.revoke_key(key_id)
    except FacegateError as error:
        _fail(error, as_json)
    _emit({"ok": True, "revoked": key_id}, as_json, f"revoked key {key_id}")


@app.command()
def events(
    door: Annotated[str | None, typer.Option("--door")] = None,
    person_id: Annotated[int | None, typer.Option("--person")] = None,
    decision: Annotated[str | None, typer.Option("--decision")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The audit log, newest first."""
    store = _open_store(as_json)
    try:
        door_id = store.door(door).id if door else None
        total, rows = store.events(door_id, person_id, decision, limit=limit)
    except FacegateError as error:
        _fail(error, as_json)
    names = store.door_names()
    items = [
        {
            "id": e.id,
            "created_at": e.created_at.isoformat(),
            "door": names.get(e.door_id),
            "decision": e.decision,
            "person_id": e.person_id,
            "level": e.level,
            "probability": e.probability,
        }
        for e in rows
    ]
    text = "\n".join(
        f"{i['id']:6d}  {i['created_at'][:19]}  {i['door'] or '-':<12} {i['decision']:<16}"
        + (f" person {i['person_id']}" if i["person_id"] else "")
        + (f" level {i['level']}" if i["level"] is not None else "")
        for i in items
    )
    _emit(
        {"ok": True, "total": total, "events": items},
        as_json,
        (text or "no events") + f"\n({len(items)} of {total})",
    )


@app.command()
def report(
    event_id: Annotated[int, typer.Argument(help="The access event.")],
    html: Annotated[Path | None, typer.Option("--html", help="Write the HTML page here.")] = None,
    as_json: JsonOption = False,
) -> None:
    """An access event's scored confidence report."""
    from recognize import render_html

    store = _open_store(as_json)
    try:
        event = store.event(event_id)
    except FacegateError as error:
        _fail(error, as_json)
    full = dict(event.report or {})
    if html is not None:
        html.write_text(render_html(full))
    full.pop("face_crop_png", None)
    text = (
        format_decision(full, event_id, html)
        if "candidates" in full
        else f"event {event_id}: {event.decision} (biometric data erased)"
    )
    _emit({"ok": True, "event_id": event_id, "report": full}, as_json, text)


@app.command("eval")
def evaluate_command(
    data: Annotated[
        Path, typer.Option("--data", help="The labelled face data (../shared/data's layout).")
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for results.json, plots, summary.md (default: <data dir>/eval, which "
            "the console shows; elsewhere, a copy goes there too).",
        ),
    ] = None,
    identities: Annotated[
        int, typer.Option("--identities", help="glint_celebs identities enrolled from photos.")
    ] = 6,
    enroll_photos: Annotated[int, typer.Option("--enroll-photos")] = 12,
    celeba_identities: Annotated[
        int, typer.Option("--celeba-identities", help="never-enrolled celeba_wild identities")
    ] = 224,
    adversarial_probes: Annotated[int, typer.Option("--adversarial-probes")] = 24,
    clip: Annotated[
        bool, typer.Option("--clip/--no-clip", help="Also enroll real.mov; replay attack.")
    ] = True,
    save_state: Annotated[
        Path | None,
        typer.Option(
            "--save-state",
            help="Also keep the enrolled persons, their models and the faces here (torch.save), "
            "for experiments on the scoring without enrolling again.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Measure four systems side by side (embedding only; + personal D without GAN; + GAN
    samples; + general D): DET, FNMR@FMR, FNIR@FPIR, APCER/BPCER/IAPMR, FTE/FTA, FGSM/PGD."""
    from evaluate import EvalConfig, run_evaluation

    if not (data / "glint_celebs").is_dir() or not (data / "celeba_wild").is_dir():
        _fail(FacegateError(f"--data {data} holds no glint_celebs/ and celeba_wild/"), as_json)
    config = EvalConfig(
        data=data,
        identities=identities,
        enroll_photos=enroll_photos,
        celeba_identities=celeba_identities,
        adversarial_probes=adversarial_probes,
        clip=clip,
        state=save_state,
    )
    say = (lambda _: None) if as_json else typer.echo
    settings = get_settings()
    shown = eval_dir(settings)
    out = out or shown
    try:
        results = run_evaluation(config, settings, out, say)
        if out.resolve() != shown.resolve():  # the console shows the last evaluation
            shown.mkdir(parents=True, exist_ok=True)
            for name in EVAL_FILES:
                shutil.copyfile(out / name, shown / name)
    except ValueError as error:
        _fail(FacegateError(str(error)), as_json)
    except FacegateError as error:
        _fail(error, as_json)
    _emit(
        {"ok": True, "out": str(out), "seconds": results["seconds"]},
        as_json,
        (out / "summary.md").read_text() + f"\nwritten to {out}",
    )


@app.command()
def demo(
    video: Annotated[
        Path | None,
        typer.Option(
            "--video", help="Your own clip; without one the demo uses a face shipped in a package."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Enroll a person and answer door queries end to end, printing the reports."""
    from api.demo import run_demo

    try:
        result = run_demo(
            video,
            get_settings(),
            say=(lambda _: None) if as_json else typer.echo,
            progress=ProgressLine(not as_json),
        )
    except FacegateError as error:
        _fail(error, as_json)
    if as_json:
        _emit(result, True, "")


def main() -> None:
    app()
