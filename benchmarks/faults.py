"""Faults under load: 10 door clients post frames to a local `facegate serve` (100 enrolled
persons, as benchmarks/api_load.py builds them) for about two minutes, while this script
  1. posts pixel bombs (a few hundred bytes declaring 30000x30000 and 40000x40000 pixels) and
     measures /healthz meanwhile;
  2. deletes the real person's personal-discriminator file, reads /readyz, and restores it;
  3. kills the server with SIGKILL and starts it again on the same port;
  4. stops it with SIGTERM and starts it again.
Prints the requests answered by status, the 5xx count (target 0), the connection failures while
the server was down, /healthz latency p50/p99 during the bombs (target p99 < 100 ms), /readyz's
answer without the file (the 99 synthetic persons share the real person's file, so all 100 are
named), and the downtime of each restart. Asserts nothing. Filling a small data
disk is not done: it needs a mount this script cannot make.

Run: OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/faults.py [--seconds 120]
"""

import argparse
import json
import os
import shutil
import signal
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
    server.wait(timeout=60)
    server, _ = api_load.start_server(env, port)
    return server, round(time.monotonic() - t0, 1)


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
    work = Path(tempfile.mkdtemp()) / "data"  # a copy: this script deletes a model file
    shutil.copytree(args.data_dir, work)
    env = {**os.environ, "FACEGATE_DATA_DIR": str(work)}
    server, base = api_load.start_server(env)
    results: list = []
    out: dict = {"clients": args.clients, "seconds": args.seconds}
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
        time.sleep(args.seconds * 0.1)
        lost = model_file(work)
        kept = lost.read_bytes()
        lost.unlink()
        server, out["restart_without_model_s"] = restart(server, env, base, signal.SIGTERM)
        ready = httpx.get(base + "/readyz")
        out["readyz_without_model"] = {"http_status": ready.status_code, **ready.json()}
        time.sleep(args.seconds * 0.15)
        lost.write_bytes(kept)
        server, out["sigkill_restart_s"] = restart(server, env, base, signal.SIGKILL)
        time.sleep(args.seconds * 0.15)
        server, out["sigterm_restart_s"] = restart(server, env, base, signal.SIGTERM)
        for t in clients:
            t.join()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    by_status: dict[str, int] = {}
    for _, status, _, _ in results:
        by_status[str(status)] = by_status.get(str(status), 0) + 1
    out["requests"] = len(results)
    out["by_status"] = by_status
    out["http_5xx"] = sum(n for s, n in by_status.items() if s.isdigit() and int(s) >= 500)
    out["connection_failures"] = sum(n for s, n in by_status.items() if not s.isdigit())
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
