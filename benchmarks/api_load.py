"""Load test of the HTTP service: a local `facegate serve` (uvicorn) with 100 enrolled persons,
20 concurrent door clients for 60 seconds, each with its own door and door key, sending one
640x480 JPEG per request (the enrolled person live, and never-enrolled strangers, 4:1). Prints
requests per second, p50/p99 latency, the error count and the decisions, for the service one query
at a time (FACEGATE_DECISION_WORKERS=1, FACEGATE_BATCH_MAX_QUERIES=1: the service before the
micro-batcher) and as configured by default, in one run, and the throughput ratio. Asserts
nothing.

Run: .venv/bin/python benchmarks/api_load.py [--clients 20] [--seconds 60] [--persons 100]
    [--only one_at_a_time,batched]
The enrolled person is real.mov with the default training (about 5 minutes on 2 CPU cores, once;
the data folder is kept in the temp folder and reused); the other 99 persons are synthetic index
entries sharing that person's discriminator file (benchmarks/recognize.py).
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

# run as a script, this folder comes first on sys.path, where recognize.py would shadow the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _recognition_bench():
    """benchmarks/recognize.py, loaded under another name (`recognize` is the package)."""
    import importlib.util

    path = Path(__file__).resolve().parent / "recognize.py"
    spec = importlib.util.spec_from_file_location("bench_recognize", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _recognition_bench()
DATA = bench.DATA

FACEGATE = str(Path(sys.executable).with_name("facegate"))


def prepare(data_dir: Path, persons: int, doors: int) -> tuple[list[str], list[bytes]]:
    """The database (enrolled, calibrated, `persons` in all), `doors` doors with a key each, and
    the request images."""
    from facegate.settings import Settings
    from recognize import FacePipeline

    settings = Settings(_env_file=None, data_dir=data_dir)
    pipeline = FacePipeline(settings)
    store, _ = bench.enrolled_store(settings, pipeline, data_dir)
    have = store.find_persons()[0]
    if have < persons:
        bench.add_synthetic_persons(
            store, pipeline, settings.embedder, persons - have, np.random.default_rng(0)
        )
    keys = []
    existing = {d.name for d in store.doors()}
    for i in range(doors):
        name = f"door-{i:02d}"
        if name not in existing:
            door = store.add_door(name, required_level=6)
            store.allow(door.id, person_id=1)
        keys.append(store.create_key(f"load {name}", "door", name)[0])
    print(f"{store.find_persons()[0]} persons enrolled, {doors} doors", flush=True)
    store.close()
    images = [jpeg(f) for f in bench.door_frames()]
    strangers = sorted(p for p in (DATA / "celeba_wild").iterdir() if p.is_dir())[:8]
    for folder in strangers:
        photo = cv2.imread(str(sorted(folder.iterdir())[0]))
        if photo is not None:
            images.append(jpeg(cv2.cvtColor(cv2.resize(photo, (640, 480)), cv2.COLOR_BGR2RGB)))
    return keys, images


def jpeg(frame: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [95, 90])
    assert ok
    return data.tobytes()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def client(base: str, door: int, key: str, images: list[bytes], until: float, out: list) -> None:
    import httpx

    rng = np.random.default_rng(door)
    enrolled = len(images) - 8
    with httpx.Client(base_url=base, timeout=30, headers={"X-API-Key": key}) as http:
        while time.monotonic() < until:
            stranger = rng.random() < 0.2
            index = rng.integers(enrolled, len(images)) if stranger else rng.integers(0, enrolled)
            files = [("images", ("frame.jpg", images[index], "image/jpeg"))]
            t0 = time.perf_counter()
            event = None
            try:
                response = http.post(f"/v1/doors/door-{door:02d}/access", files=files)
                status = response.status_code
                decision = response.json().get("decision") if status == 200 else None
                event = response.json().get("event_id") if status == 200 else None
            except Exception as error:  # counted as an error, with its kind
                status, decision = type(error).__name__, None
                time.sleep(0.1)  # a server that is down is not hammered
            out.append((time.perf_counter() - t0, status, decision, bool(stranger), event))


# the service as it was before the micro-batcher (one query at a time), and as it runs now
CONFIGURATIONS = {
    "one_at_a_time": {"FACEGATE_DECISION_WORKERS": "1", "FACEGATE_BATCH_MAX_QUERIES": "1"},
    "batched": {},
}


def start_server(env: dict, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """`facegate serve` under `env`, once /readyz answers 200 (or 503 after a minute). Its log
    goes to a file in the system's temporary folder (`server.log_path`): a pipe nobody reads
    fills at 64 KB and then blocks every thread of the server that logs (the stall at SIGTERM
    in the first faults run, after a full disk's 507s had been logged)."""
    import httpx

    port = port or free_port()
    fd, log_path = tempfile.mkstemp(prefix="facegate-serve-", suffix=".log")
    with os.fdopen(fd, "wb") as log:
        server = subprocess.Popen(
            [FACEGATE, "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    server.log_path = log_path
    base = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if httpx.get(base + "/readyz").status_code in (200, 503):
                break
        except httpx.ConnectError:
            pass
        time.sleep(0.25)
    return server, base


def measure(args, env: dict, keys: list[str], images: list[bytes]) -> dict:
    """One `facegate serve` under `env`, loaded by the door clients for args.seconds."""
    import httpx

    server, base = start_server(env)
    try:
        # one warm-up query loads the models, as a door's first visitor would
        httpx.post(
            base + "/v1/doors/door-00/access",
            files=[("images", ("f.jpg", images[0], "image/jpeg"))],
            headers={"X-API-Key": keys[0]},
            timeout=60,
        )
        results: list = []
        until = time.monotonic() + args.seconds
        threads = [
            threading.Thread(target=client, args=(base, i, keys[i], images, until, results))
            for i in range(args.clients)
        ]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    latency = np.array([r[0] for r in results]) * 1000
    errors = [r for r in results if r[1] != 200]
    decisions: dict[str, dict[str, int]] = {"enrolled": {}, "stranger": {}}
    for _, status, decision, stranger, _ in results:
        if status == 200:
            row = decisions["stranger" if stranger else "enrolled"]
            row[decision] = row.get(decision, 0) + 1
    return {
        "seconds": round(elapsed, 1),
        "requests": len(results),
        "requests_per_s": round(len(results) / elapsed, 2),
        "p50_ms": round(float(np.percentile(latency, 50)), 1),
        "p99_ms": round(float(np.percentile(latency, 99)), 1),
        "errors": len(errors),
        "error_kinds": sorted({str(e[1]) for e in errors}),
        "decisions": decisions,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--persons", type=int, default=100)
    parser.add_argument(
        "--only", default=",".join(CONFIGURATIONS), help="one_at_a_time, batched or both"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "facegate-bench-api"
    )
    args = parser.parse_args()
    keys, images = prepare(args.data_dir, args.persons, args.clients)
    summary: dict = {"clients": args.clients, "persons": args.persons}
    for name in args.only.split(","):
        env = {**os.environ, "FACEGATE_DATA_DIR": str(args.data_dir), **CONFIGURATIONS[name]}
        summary[name] = measure(args, env, keys, images)
        print(json.dumps({name: summary[name]}), flush=True)
    if all(name in summary for name in CONFIGURATIONS):
        before, after = summary["one_at_a_time"], summary["batched"]
        summary["throughput_ratio"] = round(after["requests_per_s"] / before["requests_per_s"], 2)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
