"""The `facegate` command line: init, enroll, recognize, serve, and the end-to-end demo."""

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from api.render import PENDING, format_enrollment
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


@app.command()
def init(as_json: JsonOption = False) -> None:
    """Create the data folder (FACEGATE_DATA_DIR) that holds the embedded database and artifacts."""
    settings = get_settings()
    data_dir = settings.data_dir.resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(FacegateError(f"cannot create data folder {data_dir}: {exc.strerror}"), as_json)
    obj = {"ok": True, "data_dir": str(data_dir), "pending": [PENDING["database"]]}
    _emit(obj, as_json, f"data folder ready: {data_dir}\nnot built yet: {PENDING['database']}")


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
    frames: Annotated[
        bool, typer.Option("--frames", help="Also print the per-frame quality table.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Enroll a person from a clip (or photos): prints frames read and kept, pose coverage per yaw bin,
    and why frames were dropped."""
    from enroll import enroll as run_enrollment

    if not name.strip():
        _fail(FacegateError("--name must not be empty"), as_json)
    try:
        result = run_enrollment(name.strip(), video=video, camera=camera, url=url, photos=photos)
    except FacegateError as error:
        _fail(error, as_json)
    summary = result.summary()
    summary["pending"] = [PENDING["gan"], PENDING["database"]]
    obj = {"ok": True, "enrollment": summary, "frames": [r.as_dict() for r in result.frames]}
    _emit(obj, as_json, format_enrollment(summary, result.frames if frames else None))


@app.command()
def recognize(
    images: Annotated[list[Path], typer.Argument(help="One image, or a short burst of frames.")],
    door: Annotated[str | None, typer.Option("--door", help="The door asking.")] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write the HTML report here.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Decide grant / deny / unknown / spoof for a face at a door, with a scored report."""
    _fail(
        NotBuiltYetError(
            f"recognition needs {PENDING['database']} and {PENDING['recognizer']}; "
            "`facegate demo` shows the face pipeline answering door queries in the meantime"
        ),
        as_json,
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
) -> None:
    """Run the door-access HTTP API."""
    _fail(NotBuiltYetError(f"{PENDING['api']} is not built yet"), False)


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
        result = run_demo(video, get_settings(), say=(lambda _: None) if as_json else typer.echo)
    except FacegateError as error:
        _fail(error, as_json)
    if as_json:
        _emit(result, True, "")


def main() -> None:
    app()
