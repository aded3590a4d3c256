"""Schema migrations (Alembic): upgrade to the newest, and refuse to run on an out-of-date schema."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from facegate.errors import FacegateError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class SchemaOutOfDateError(FacegateError):
    code = "schema_out_of_date"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Bring the schema to the newest revision; returns it."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return head_revision()


def require_current(engine: Engine) -> None:
    """Raise SchemaOutOfDateError, naming the command to run, unless the schema is the newest."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        state = "has no facegate schema" if current is None else f"is at schema {current}"
        raise SchemaOutOfDateError(
            f"the database {engine.url.render_as_string(hide_password=True)} {state}, this facegate "
            f"needs {head}: run `facegate db upgrade`"
        )
