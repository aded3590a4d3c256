"""Faults under load: 10 door clients post frames to a local `facegate serve` (100 enrolled
persons, as benchmarks/api_load.py builds them, copied onto a small tmpfs where this machine allows
the mount) for about two minutes, while this script
  1. posts pixel bombs (a few hundred bytes declaring 30000x30000 and more pixels) and measures
     /healthz meanwhile;
  2. deletes the real person's personal-discriminator file, restarts the server (SIGTERM), reads
     /readyz, and restores the file;
  3. uploads an enrollment clip and kills the server with SIGKILL while its job runs, then starts
     it again on the same port;
  4. fills the data disk, counts the answers while it is full, and frees it;
  5. stops the server with SIGTERM and starts it again.
Prints the answers by status, the 5xx other than 507 (target 0), the connection failures while
the server was down, /healthz p50/p99 during the bombs (target p99 < 100 ms), /readyz without the
file (the 99 synthetic persons share the real person's file, so all 100 are named), restart times,
events lost (every 200 answer's event must be in the database), uploads left, and `db check`.
Asserts nothing.

Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/faults.py [--seconds 120]
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

# run as a script, this folder comes first on sys.path, where recognize.py would shadow the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_images import bomb_jpeg, bomb_png  # noqa: E402


def _api_load():
    """benchmarks/api_load.py, loaded by its path (this folder is not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parent / "api_load.py"
    spec = importlib.util.spec_from_file_location("bench_api_load", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


api_load = _api_load()


def health_latency(base: str, seconds: float) -> list[float]:
    import httpx

    out = []
    until = time.monotonic() + seconds
    with httpx.Client(base_url=base, timeout=30) as http:
        while time.monotonic() < until:
            t0 = time.perf_counter()
            try:
                http.get("/healthz")
                out.append((time.perf_counter() - t0) * 1000)
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    return out


def post_bombs(base: str, key: str, statuses: list) -> None:
    import httpx

    bombs = [bomb_png(40_000, 40_000), bomb_jpeg(30_000, 30_000), bomb_jpeg(65_000, 65_000)] * 3
    with httpx.Client(base_url=base, timeout=60, headers={"X-API-Key": key}) as http:
        for bomb in bombs:
            files = [("images", ("bomb.png", bomb, "image/png"))]
            response = http.post("/v1/doors/door-00/access", files=files)
            statuses.append((response.status_code, response.json()["error"]["code"]))


def model_file(data_dir: Path) -> Path:
    from sqlalchemy import select

    from db import Store
    from db.models import ModelArtifact
    from facegate.settings import Settings

    store = Store(Settings(_env_file=None, data_dir=data_dir))
    with store.sessions() as session:
        path = session.scalars(
            select(ModelArtifact.path).where(
                ModelArtifact.person_id == 1, ModelArtifact.kind == "personal_discriminator"
            )
        ).first()
    found = store.artifacts.final_path(path)
    store.close()
    return found


def restart(server, env: dict, base: str, how: signal.Signals):
    port = int(base.rsplit(":", 1)[1])
    t0 = time.monotonic()
    server.send_signal(how)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:  # say so, with the log to read, and go on
        server.kill()
        server.wait()
        return api_load.start_server(env, port)[0], (
            f"did not exit within 60 s of {how.name} (killed); its log: {server.log_path}"
        )
    server, _ = api_load.start_server(env, port)
    return server, round(time.monotonic() - t0, 1)


def post_clip(base: str, admin: str, clip: Path) -> str:
    """An enrollment upload, so that a job and its clip are in flight when the server is killed."""
    import httpx

    with open(clip, "rb") as video:
        answer = httpx.post(
            base + "/v1/enrollments",
            data={"display_name": "Killed Mid-Job"},
            files={"video": ("real.mov", video, "video/quicktime")},
            headers={"X-API-Key": admin},
            timeout=60,
        )
    return f"{answer.status_code} {answer.json().get('status') or answer.json().get('error')}"


@contextlib.contextmanager
def small_disk(size_mb: int):
    """A tmpfs of size_mb (None when this machine does not allow the mount)."""
    where = Path(tempfile.mkdtemp())
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    try:
        yield where if done.returncode == 0 else None
    finally:
        if done.returncode == 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(disk: Path) -> Path:
    ballast = disk / "ballast"
    with open(ballast, "wb") as out:
        try:
            while True:
                out.write(b"\0" * (1 << 20))
                out.flush()
        except OSError:
            pass
    return ballast


def main() -> None:
    import httpx

    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument(
        "--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "facegate-bench-api"
    )
    args = parser.parse_args()
    keys, images = api_load.prepare(args.data_dir, 100, args.clients)
    used_mb = sum(f.stat().st_size for f in args.data_dir.rglob("*") if f.is_file()) >> 20
    out: dict = {"clients": args.clients, "seconds": args.seconds}
    with small_disk(used_mb + 400) as disk:
        # a copy (this script deletes a model file), on a small disk it can fill where allowed
        work = (disk or Path(tempfile.mkdtemp())) / "data"
        shutil.copytree(args.data_dir, work)
        out.update(run_faults(args, keys, images, work, disk, httpx))
    print(json.dumps(out, indent=2))


def _has_event(store, event_id) -> bool:
    from facegate.errors import FacegateError

    try:
        store.event(event_id)
        return True
    except FacegateError:
        return False


def run_faults(args, keys, images, work: Path, disk: Path | None, httpx) -> dict:
    from db import Store
    from facegate.settings import Settings

    env = {**os.environ, "FACEGATE_DATA_DIR": str(work)}
    store = Store(Settings(_env_file=None, data_dir=work))
    admin = store.create_key("faults", "admin")[0]
    server, base = api_load.start_server(env)
    results: list = []
    out: dict = {}
    try:
        until = time.monotonic() + args.seconds
        clients = [
            threading.Thread(
                target=api_load.client, args=(base, i, keys[i], images, until, results)
            )
            for i in range(args.clients)
        ]
        for t in clients:
            t.start()
        time.sleep(args.seconds * 0.08)
        bombs: list = []
        bomber = threading.Thread(target=post_bombs, args=(base, keys[0], bombs))
        bomber.start()
        latency = health_latency(base, 5.0)
        bomber.join()
        out["pixel_bombs"] = {
            "answers": sorted({f"{s} {c}" for s, c in bombs}),
            "health_ms_p50": round(float(np.percentile(latency, 50)), 1),
            "health_ms_p99": round(float(np.percentile(latency, 99)), 1),
            "health_probes": len(latency),
        }
        time.sleep(args.seconds * 0.05)
        lost = model_file(work)
        kept = lost.read_bytes()
        lost.unlink()
        server, out["restart_without_model_s"] = restart(server, env, base, signal.SIGTERM)
        ready = httpx.get(base + "/readyz")
        out["readyz_without_model"] = {"http_status": ready.status_code, **ready.json()}
        time.sleep(args.seconds * 0.1)
        lost.write_bytes(kept)
        clip = api_load.DATA / "liveness_replay_pyimagesearch" / "real.mov"
        out["enrollment_before_the_kill"] = post_clip(base, admin, clip)
        time.sleep(2)
        server, out["sigkill_restart_s"] = restart(server, env, base, signal.SIGKILL)
        time.sleep(args.seconds * 0.1)
        if disk is not None:
            ballast = fill(disk)
            mark = len(results)
            time.sleep(args.seconds * 0.1)
            during = [str(r[1]) for r in results[mark:]]
            out["disk_full"] = {s: during.count(s) for s in sorted(set(during))}
            ballast.unlink()
            time.sleep(args.seconds * 0.05)
            after = [str(r[1]) for r in results[len(results) - 20 :]]
            out["after_freeing"] = {s: after.count(s) for s in sorted(set(after))}
        else:
            out["disk_full"] = "not measured: this machine does not allow a tmpfs mount"
        server, out["sigterm_restart_s"] = restart(server, env, base, signal.SIGTERM)
        for t in clients:
            t.join()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    by_status: dict[str, int] = {}
    for _, status, _, _, _ in results:
        by_status[str(status)] = by_status.get(str(status), 0) + 1
    out["requests"] = len(results)
    out["by_status"] = by_status
    out["http_5xx_other_than_507"] = sum(
        n for s, n in by_status.items() if s.isdigit() and int(s) >= 500 and s != "507"
    )
    out["connection_failures"] = sum(n for s, n in by_status.items() if not s.isdigit())
    answered = [r[4] for r in results if r[1] == 200]
    missing = [e for e in answered if not _has_event(store, e)]
    out["events_lost"] = f"{len(missing)} of {len(answered)} granted/decided answers"
    out["uploads_left"] = sorted(p.name for p in store.uploads_dir.iterdir())
    out["db_check"] = store.check(verify_checksums=True).problems or "clean"
    store.close()
    return out


if __name__ == "__main__":
    main()
