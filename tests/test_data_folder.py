"""A read-only or full data folder: every command says what is wrong instead of a traceback,
`serve` refuses to start, and an upload to a full disk is 507 leaving nothing behind. Real
filesystems: a read-only bind mount and a 4 MB tmpfs (needs root and mount; skipped, with the
reason, where this machine does not allow it)."""

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from db import Store, upgrade
from db.engine import make_engine, sqlite_url
from facegate.settings import Settings
from tests.conftest import upload_clip

FACEGATE = str(Path(sys.executable).with_name("facegate"))


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"this machine does not allow `mount {' '.join(args)}`: {done.stderr.strip()}")


@contextmanager
def mounted(target: Path, *args: str):
    target.mkdir(parents=True, exist_ok=True)
    _mount(*args, str(target))
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


def run(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FACEGATE_DATA_DIR": str(data_dir)}
    return subprocess.run([FACEGATE, *args], env=env, capture_output=True, text=True, timeout=120)


def test_a_read_only_data_folder_is_named_by_every_command(tmp_path):
    source = tmp_path / "rw"
    data = source / "data"
    assert run("init", data_dir=data).returncode == 0
    with mounted(tmp_path / "ro", "--bind", str(source)) as view:
        _mount("-o", "remount,ro,bind", str(view))
        for command in (["persons", "list"], ["db", "check"], ["events"], ["keys", "list"]):
            done = run(*command, data_dir=view / "data")
            assert done.returncode == 1, (command, done.stdout, done.stderr)
            assert "read-only" in done.stderr and "Traceback" not in done.stderr, command
        serve = run("serve", "--port", "1", data_dir=view / "data")
        assert serve.returncode == 1 and "read-only" in serve.stderr
        assert "Traceback" not in serve.stderr


def test_a_full_data_folder_refuses_serve_and_uploads(tmp_path, real_clip):
    with mounted(tmp_path / "small", "-t", "tmpfs", "-o", "size=4m", "tmpfs") as disk:
        data = disk / "data"
        settings = Settings(_env_file=None, data_dir=data)
        upgrade(make_engine(sqlite_url(data)))
        store = Store(settings)
        admin = {"X-API-Key": store.create_key("root", "admin")[0]}
        app = create_app(settings, store)
        # the errors are answered, never re-raised to the server (which would drop the
        # connection, and the client's next request on it with it)
        with TestClient(app) as client:
            assert (
                client.get("/v1/doors", headers=admin).status_code == 200
            )  # the key's use stamped
            with open(disk / "ballast", "wb") as out:  # fill the disk
                try:
                    while True:
                        out.write(b"\0" * (1 << 16))
                        out.flush()
                except OSError:
                    pass
            serve = run("serve", "--port", "1", data_dir=data)
            assert serve.returncode == 1 and "MB free" in serve.stderr, serve.stderr
            assert "Traceback" not in serve.stderr
            answer = upload_clip(client, admin, real_clip, "x", "video/quicktime")
            assert answer.status_code == 507, answer.text
            assert answer.json()["error"]["code"] == "insufficient_storage"
            assert list((data / "uploads").iterdir()) == [] and store.jobs() == []
            # a database write on the full disk is 507 too, never a bare 500
            door = client.post("/v1/doors", json={"name": "lobby"}, headers=admin)
            assert (
                door.status_code == 507 and door.json()["error"]["code"] == "insufficient_storage"
            )
        store.close()
