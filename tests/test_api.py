"""The HTTP service as door controllers, administrators and officers use it: the real app through
TestClient, a real uvicorn process, a real Celery worker over Redis, real clips and faces."""

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from db import Store, upgrade
from db.engine import make_engine, sqlite_url
from facegate.settings import Settings
from facegate.urls import SourceUrlRefused, check_source_url
from facegate.validation import InvalidNameError
from recognize import Recognizer, report_schema
from tests.conftest import artifact_file, celeba, read_clip, upload_clip
from tests.db_writer import person
from tests.test_images import bomb_jpeg, bomb_png

FACEGATE = str(Path(sys.executable).with_name("facegate"))
PATH_VALUES = {
    "person_id": "1",
    "job_id": "00000000-0000-0000-0000-000000000000",
    "door": "lobby",
    "event_id": "1",
    "key_id": "1",
    "policy_id": "1",
}


def jpeg(frame: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def new_store(root: Path, **overrides) -> Store:
    settings = Settings(_env_file=None, data_dir=root / "facegate-data", **overrides)
    upgrade(make_engine(sqlite_url(settings.data_dir)))
    return Store(settings)


@pytest.fixture
def store(tmp_path):
    s = new_store(tmp_path)
    yield s
    s.close()


@pytest.fixture
def admin(store) -> dict:
    return {"X-API-Key": store.create_key("root", "admin")[0]}


def every_route(app) -> list[tuple[str, str]]:
    routes = []
    for path, methods in app.openapi()["paths"].items():
        if path in ("/healthz", "/readyz"):
            continue
        for method in methods:
            routes.append((method.upper(), path.format(**PATH_VALUES)))
    return routes


# --- the whole story ---------------------------------------------------------------------------


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver that fails its first delivery (to exercise the retry)."""

    received: list = []
    refused = 0

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if Receiver.refused == 0:
            Receiver.refused += 1
            self.send_response(500)
        else:
            Receiver.received.append((dict(self.headers), body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_server():
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.received, Receiver.refused = [], 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def test_the_whole_story_over_http(
    tmp_path, pipeline, data, real_clip, calibration_faces, webhook_server, mqtt_broker, mqtt_bus
):
    store = new_store(
        tmp_path,
        gan_steps=40,
        verifier_steps=120,
        general_steps=120,
        webhook_url=webhook_server,
        webhook_secret="s3cret",
        mqtt_url=mqtt_broker.url,
    )
    bus = mqtt_bus
    admin = {"X-API-Key": store.create_key("root", "admin")[0]}
    app = create_app(store.settings, store, pipeline)
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 503  # nobody enrolled, nothing calibrated
        # an administrator creates the door and its controller's key
        made = client.post("/v1/doors", json={"name": "lobby", "required_level": 6}, headers=admin)
        assert made.status_code == 201 and made.json()["required_level"] == 6
        assert client.post("/v1/doors", json={"name": "lobby"}, headers=admin).status_code == 409
        key = client.post(
            "/v1/keys", json={"name": "lobby ctl", "scope": "door", "door": "lobby"}, headers=admin
        ).json()
        door_key = {"X-API-Key": key["key"]}
        audit = client.post("/v1/keys", json={"name": "officer", "scope": "audit"}, headers=admin)
        officer = {"Authorization": f"Bearer {audit.json()['key']}"}

        # enrollment from the real head-turn clip, followed as server-sent events
        with open(real_clip, "rb") as clip:
            job = client.post(
                "/v1/enrollments",
                data={"display_name": "Test Person", "external_id": "EMP-1"},
                files={"video": ("real.mov", clip, "video/webm")},
                headers=admin,
            )
        assert job.status_code == 202, job.text
        job_id = job.json()["id"]
        updates = []
        with client.stream("GET", f"/v1/enrollments/{job_id}/events", headers=admin) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    updates.append(json.loads(line[6:]))
        done = updates[-1]
        assert done["status"] == "succeeded", done
        assert done["progress"] == 1.0 and done["report_url"]
        progress = [u["progress"] for u in updates]
        assert progress == sorted(progress) and len(updates) >= 3  # it moved in steps
        person_id = done["person_id"]
        report = client.get(done["report_url"], headers=admin).json()
        assert report["person_id"] == person_id
        summary = report["enrollment"]
        assert summary["faces_selected"] >= 8 and min(summary["pose_coverage"].values()) >= 3
        assert report["models"]["personal_discriminator"]["auc"] > 0.9
        assert len(report["frames"]) == summary["frames_sampled"]
        grid = client.get(report["sample_grid_url"], headers=admin)
        image = cv2.imdecode(np.frombuffer(grid.content, np.uint8), cv2.IMREAD_COLOR)
        assert grid.headers["content-type"] == "image/png" and image.shape == (256, 512, 3)
        page = client.get(f"/v1/enrollments/{job_id}/report.html", headers=admin).text
        assert "Enrollment of Test Person" in page and "samples.png" in page
        again = client.post(
            "/v1/enrollments",
            data={"display_name": "Twin", "external_id": "EMP-1"},
            files={"video": ("real.mov", real_clip.read_bytes(), "video/webm")},
            headers=admin,
        )
        assert again.status_code == 409 and again.json()["error"]["code"] == "duplicate_external_id"

        # the levels are calibrated on people never enrolled; the service picks the table up
        Recognizer(store, pipeline).calibrate(calibration_faces, "celeba_wild 40-79")
        assert client.get("/readyz").json()["status"] == "ok"
        policy = client.post(
            "/v1/doors/lobby/policies", json={"person_id": person_id}, headers=admin
        )
        assert policy.status_code == 201

        # the enrolled person, from another clip, at the door (multipart)
        frames, _ = read_clip(data / "liveness_replay_pyimagesearch" / "fake.mp4", max_frames=19)
        answers = []
        for i in (0, 9, 18):
            files = [("images", (f"f{i}.jpg", jpeg(frames[i]), "image/jpeg"))]
            answer = client.post("/v1/doors/lobby/access", files=files, headers=door_key)
            assert answer.status_code == 200, answer.text
            answers.append(answer.json())
        granted = [a for a in answers if a["granted"]]
        assert len(granted) >= 2, [a["reason"] for a in answers]
        for a in granted:
            assert a["person"] == {"id": person_id, "display_name": "Test Person"}
            assert a["level"] >= 6 and a["probability"] > 0.99 and a["decision"] == "grant"
        # strangers (JSON with base64): never a name
        strangers = []
        for photo, _ in celeba(data, 0, 3):
            body = {"images": [base64.b64encode(jpeg(photo)).decode()]}
            answer = client.post("/v1/doors/lobby/access", json=body, headers=door_key).json()
            strangers.append(answer)
        assert all(s["person"] is None and not s["granted"] for s in strangers), strangers
        assert "unknown" in {s["decision"] for s in strangers}

        # the officer reads the audit log and the reports; the door key cannot
        log = client.get("/v1/events", params={"door": "lobby"}, headers=officer).json()
        queries = answers + strangers
        assert log["total"] == len(queries) and [e["id"] for e in log["items"]] == sorted(
            (e["id"] for e in log["items"]), reverse=True
        )
        later = {"since": "2999-01-01T00:00:00+02:00"}
        assert client.get("/v1/events", params=later, headers=officer).json()["total"] == 0
        first = log["items"][-1]["created_at"]
        window = client.get("/v1/events", params={"since": first}, headers=officer).json()
        before = client.get("/v1/events", params={"until": first}, headers=officer).json()
        assert window["total"] == len(queries) and before["total"] == 0
        grants = client.get("/v1/events", params={"decision": "grant"}, headers=officer).json()
        assert grants["total"] == len(granted)
        event = granted[0]["event_id"]
        full = client.get(f"/v1/events/{event}/report", headers=officer).json()
        jsonschema.validate(full, report_schema())
        assert full["decision"] == "grant" and full["person_id"] == person_id
        html = client.get(granted[0]["report_html_url"], headers=officer).text
        assert "GRANT" in html and "Test Person" in html
        assert client.get("/v1/events", headers=door_key).status_code == 403
        metrics = client.get("/metrics", headers=officer).text
        assert f'facegate_decisions_total{{decision="grant"}} {float(len(granted))}' in metrics

        # every access event reached the webhook, signed, after a refused first delivery
        service = app.state.service
        assert service.webhooks.flush(timeout=30)
        assert Receiver.refused == 1 and len(Receiver.received) == len(queries)
        for headers, body in Receiver.received:
            stamp = headers["X-Facegate-Timestamp"]
            mac = hmac.new(b"s3cret", stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(headers["X-Facegate-Signature"], "sha256=" + mac)
        sent = [json.loads(body) for _, body in Receiver.received]
        assert [s["event_id"] for s in sent] == [q["event_id"] for q in queries]
        # and the MQTT broker, in order, as the door's decisions; the last one as its state
        assert service.mqtt.flush(30) and service.mqtt.dropped == 0
        access = lambda m: [t for t, _, _ in m if t == "facegate/lobby/access"]  # noqa: E731
        assert bus.wait_for(lambda m: len(access(m)) >= len(queries), 30)
        published = bus.events("lobby/access")
        assert published == sent  # the webhook's JSON, event for event
        state = [json.loads(p) for t, p, _ in bus.messages if t == "facegate/lobby/state"]
        assert state[-1]["event_id"] == queries[-1]["event_id"]
        jobs = bus.events("/enrollment")
        ours = [j for j in jobs if j["job_id"] == job_id]
        assert ours[0]["status"] == "running" and ours[-1]["status"] == "succeeded"
        assert ours[-1]["person_id"] == person_id and ours[-1]["progress"] == 1.0
        assert [j["progress"] for j in ours] == sorted(j["progress"] for j in ours)
        assert all(j["display_name"] != "Twin" for j in jobs)  # refused: no job ran
        assert ("facegate/availability", "online") in [(t, p) for t, p, _ in bus.messages]

        # door queries arriving together are decided in one batched pass, each its own answer
        burst = [jpeg(frames[i]) for i in (1, 4, 7, 10, 13, 16)]
        batched = store.settings.model_copy(
            update={"batch_window_ms": 1000.0, "decision_workers": 1}
        )
        together = _concurrent_queries(create_app(batched, store, pipeline), burst, door_key)
        assert [r.status_code for r in together] == [200] * 6, [r.text for r in together]
        assert sum(r.json()["granted"] for r in together) >= 4
        assert len({r.json()["event_id"] for r in together}) == 6
        assert "facegate_decision_batch_size_count 1.0" in together.metrics
        assert "facegate_decision_batch_size_sum 6.0" in together.metrics
        # a full queue answers 503 at once, with the time to retry, and loses no one's event
        tight = store.settings.model_copy(
            update={
                "max_queued_queries": 1,
                "batch_max_queries": 1,
                "batch_window_ms": 0.0,
                "decision_workers": 1,
            }
        )
        crowded = _concurrent_queries(create_app(tight, store, pipeline), burst, door_key)
        codes = [r.status_code for r in crowded]
        assert set(codes) <= {200, 503} and codes.count(503) >= 1 and codes.count(200) >= 2
        for refused in (r for r in crowded if r.status_code == 503):
            assert refused.json()["error"]["code"] == "overloaded"
            assert int(refused.headers["Retry-After"]) >= 1
        assert "facegate_overloaded_total " + str(float(codes.count(503))) in crowded.metrics
        answered = {r.json()["event_id"] for r in crowded if r.status_code == 200}
        logged = client.get("/v1/events", params={"limit": 20}, headers=officer).json()["items"]
        assert answered <= {e["id"] for e in logged}

        # one person's lost model file closes no door: a restarted service says so and goes on
        model_file = artifact_file(store, person_id, "personal_discriminator")
        kept = model_file.read_bytes()
        model_file.unlink()
        try:
            with TestClient(create_app(store.settings, store, pipeline)) as restarted:
                ready = restarted.get("/readyz")
                assert ready.status_code == 200 and ready.json()["status"] == "degraded"
                assert f"persons {person_id};" in ready.json()["checks"]["artifacts"]
                assert str(store.settings.data_dir) not in ready.text
                files = [("images", ("f.jpg", jpeg(frames[0]), "image/jpeg"))]
                answer = restarted.post("/v1/doors/lobby/access", files=files, headers=door_key)
                assert answer.status_code == 200, answer.text
                assert answer.json()["person"] == {"id": person_id, "display_name": "Test Person"}
                shown = restarted.get(answer.json()["report_url"], headers=officer).json()
                top = shown["candidates"][0]
                assert top["person_id"] == person_id and top["personal_logit"] is None
                assert "personal discriminator unavailable" in top["unavailable"]
                assert str(store.settings.data_dir) not in json.dumps(shown)
                body = {"images": [base64.b64encode(jpeg(next(celeba(data, 5, 1))[0])).decode()]}
                other = restarted.post("/v1/doors/lobby/access", json=body, headers=door_key)
                assert other.status_code == 200 and other.json()["person"] is None
                gauge = restarted.get("/metrics", headers=officer).text
                assert "facegate_unavailable_models 2.0" in gauge  # both queries shortlisted them
        finally:
            model_file.write_bytes(kept)

        # deleting the person erases their biometrics everywhere the API shows them
        assert client.delete(f"/v1/persons/{person_id}", headers=admin).status_code == 200
        assert client.get(f"/v1/persons/{person_id}", headers=admin).status_code == 404
        erased = client.get(f"/v1/events/{event}/report", headers=officer).json()
        assert "face_crop_png" not in erased and "candidates" not in erased
        assert client.get(done["report_url"], headers=admin).status_code == 410


class _Answers(list):
    metrics: str = ""


def _concurrent_queries(app, images: list[bytes], headers: dict) -> _Answers:
    """Every image posted at once from its own thread to a fresh service; the answers in order,
    and the service's metrics after them."""
    officer = {"X-API-Key": app.state.service_args[1].create_key("metrics", "audit")[0]}
    with TestClient(app) as client:
        start = threading.Barrier(len(images))

        def post(image: bytes):
            start.wait(timeout=30)
            files = [("images", ("f.jpg", image, "image/jpeg"))]
            return client.post("/v1/doors/lobby/access", files=files, headers=headers)

        with ThreadPoolExecutor(len(images)) as pool:
            answers = _Answers(pool.map(post, images))
        answers.metrics = client.get("/metrics", headers=officer).text
    return answers


# --- keys and scopes ---------------------------------------------------------------------------


def test_every_route_refuses_a_missing_or_wrong_key(store, admin):
    app = create_app(store.settings, store)
    with TestClient(app) as client:
        routes = every_route(app)
        assert len(routes) >= 20
        revoked, info = store.create_key("old", "admin")
        store.revoke_key(info.id)
        for method, path in routes:
            for headers, code in (
                ({}, "missing_api_key"),
                ({"X-API-Key": "fg_wrong"}, "invalid_api_key"),
                ({"Authorization": "Bearer fg_wrong"}, "invalid_api_key"),
                ({"X-API-Key": revoked}, "invalid_api_key"),
            ):
                response = client.request(method, path, headers=headers)
                assert response.status_code == 401, (method, path, headers)
                assert response.json()["error"]["code"] == code
        assert client.get("/healthz").status_code == 200  # health needs no key


def test_scopes_and_doors(store, admin):
    store.add_door("lobby")
    store.add_door("vault", required_level=9)
    app = create_app(store.settings, store)
    with TestClient(app) as client:
        lobby = {"X-API-Key": store.create_key("lobby ctl", "door", "lobby")[0]}
        officer = {"X-API-Key": store.create_key("officer", "audit")[0]}
        image = {"images": [base64.b64encode(b"\xff\xd8\xff" + b"0" * 64).decode()]}
        wrong = client.post("/v1/doors/vault/access", json=image, headers=lobby)
        assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "wrong_door"
        # its own door: past the key check (the image itself is then refused)
        own = client.post("/v1/doors/lobby/access", json=image, headers=lobby)
        assert own.json()["error"]["code"] == "image_decode_error"
        for method, path in every_route(app):
            if path.endswith("/access"):
                continue
            response = client.request(method, path, headers=lobby)
            assert response.status_code == 403, (method, path)
            assert response.json()["error"]["code"] == "forbidden_scope"
        assert client.get("/v1/events", headers=officer).status_code == 200
        assert client.get("/metrics", headers=officer).status_code == 200
        assert client.post("/v1/doors", json={"name": "x"}, headers=officer).status_code == 403
        assert client.post("/v1/doors/lobby/access", json=image, headers=officer).status_code == 403
        assert client.get("/v1/keys", headers=admin).json()[0]["name"] == "root"
        assert all("key" not in k for k in client.get("/v1/keys", headers=admin).json())
        # a time reads the same, zone and all, when created and when read back from the store
        made = client.post("/v1/keys", json={"name": "k2", "scope": "audit"}, headers=admin)
        listed = {k["id"]: k for k in client.get("/v1/keys", headers=admin).json()}
        stamp = made.json()["created_at"]
        assert stamp.endswith("Z") and listed[made.json()["id"]]["created_at"] == stamp
        door = client.get("/v1/doors", headers=admin).json()
        assert all(d["created_at"].endswith("Z") for d in door), door


def test_a_door_names_its_own_webhook_and_never_shows_the_secret(store, admin):
    secret = "gate-secret-0123456789"
    with TestClient(create_app(store.settings, store)) as client:
        made = client.post(
            "/v1/doors",
            json={
                "name": "gate",
                "webhook_url": "https://nvr.example/hook",
                "webhook_secret": secret,
            },
            headers=admin,
        )
        assert made.status_code == 201 and made.json()["webhook_url"] == "https://nvr.example/hook"
        no_secret = client.post(
            "/v1/doors", json={"name": "gate2", "webhook_url": "https://nvr/h"}, headers=admin
        )
        assert no_secret.status_code == 422 and "own secret" in no_secret.text
        assert client.get("/v1/doors/gate2", headers=admin).status_code == 404  # nothing made
        moved = client.put(
            "/v1/doors/gate/webhook",
            json={"url": "http://10.0.0.5:8123/api/webhook/gate", "secret": secret},
            headers=admin,
        )
        assert moved.json()["webhook_url"] == "http://10.0.0.5:8123/api/webhook/gate"
        bad = client.put(
            "/v1/doors/gate/webhook", json={"url": "ftp://x/y", "secret": secret}, headers=admin
        )
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_door"
        missing = client.put(
            "/v1/doors/nowhere/webhook",
            json={"url": "https://x/y", "secret": secret},
            headers=admin,
        )
        assert missing.status_code == 404
        cleared = client.delete("/v1/doors/gate/webhook", headers=admin)
        assert cleared.status_code == 200 and cleared.json()["webhook_url"] is None
        listed = client.get("/v1/doors", headers=admin).text
        assert secret not in listed and secret not in made.text


def test_the_last_evaluation_and_the_level_table_are_served_to_auditors(store, admin, data):
    officer = {"X-API-Key": store.create_key("officer", "audit")[0]}
    with TestClient(create_app(store.settings, store)) as client:
        for path in ("/v1/levels", "/v1/evaluation", "/v1/evaluation/det.png"):
            missing = client.get(path, headers=officer)
            assert missing.status_code == 404, path
            assert "facegate " in missing.json()["error"]["message"]  # the command to run
        shown = store.settings.data_dir / "eval"
        shown.mkdir()
        (shown / "summary.md").write_text("# facegate eval\n| system | FNMR |\n")
        (shown / "results.json").write_text(json.dumps({"seconds": {"total": 984.2}}))
        png = (data / "face_recognition_examples" / "obama.jpg").read_bytes()  # any bytes
        (shown / "det.png").write_bytes(png)
        got = client.get("/v1/evaluation", headers=officer).json()
        assert got["summary_markdown"].startswith("# facegate eval") and got["seconds"] == 984.2
        plot = client.get(got["det_url"], headers=officer)
        assert plot.headers["content-type"] == "image/png" and plot.content == png


def test_rate_limit_per_key(tmp_path):
    store = new_store(tmp_path, rate_limit_per_minute=60)  # bursts of 6
    admin = {"X-API-Key": store.create_key("root", "admin")[0]}
    other = {"X-API-Key": store.create_key("other", "admin")[0]}
    with TestClient(create_app(store.settings, store)) as client:
        codes = [client.get("/v1/doors", headers=admin).status_code for _ in range(8)]
        assert codes[:6] == [200] * 6 and codes[6:] == [429, 429]
        limited = client.get("/v1/doors", headers=admin)
        assert limited.json()["error"]["code"] == "rate_limited"
        wait = int(limited.headers["Retry-After"])
        assert wait >= 1 and f"retry in {wait} s" in limited.json()["error"]["message"]
        assert client.get("/v1/doors", headers=other).status_code == 200  # per key


def test_names_weekdays_and_search_terms_follow_one_rule(tmp_path):
    store = new_store(tmp_path)
    admin = {"X-API-Key": store.create_key("root", "admin")[0]}
    for name in ("Ada 100% Lovelace", "Grace_Hopper"):
        store.add_person(name, "dlib", "test", person(np.random.default_rng(len(name)))[0])
    for name in ("../x", "front door", "x" * 300, ".hidden", ""):
        with pytest.raises(InvalidNameError):
            store.add_door(name)
    door = store.add_door("lobby")
    for weekdays in ("00000", "0123456 ", "7", "", "0a"):
        with pytest.raises(InvalidNameError):
            store.allow(door.id, person_id=1, weekdays=weekdays)
    with TestClient(create_app(store.settings, store)) as client:

        def code(response):
            return response.status_code, response.json()["error"]["code"]

        for name in ("../x", "front door", "x" * 300):
            made = client.post("/v1/doors", json={"name": name}, headers=admin)
            assert code(made) == (422, "invalid_request"), name
        policy = {"person_id": 1, "weekdays": "00000"}
        refused = client.post("/v1/doors/lobby/policies", json=policy, headers=admin)
        assert code(refused) == (422, "invalid_request") and "at most once" in refused.text
        deep = "[" * 100_000 + "]" * 100_000
        nested = client.post(
            "/v1/doors", content=deep, headers={**admin, "Content-Type": "application/json"}
        )
        assert code(nested) == (422, "invalid_request")

        # % and _ in a search are the characters themselves, not wildcards
        def search(term: str) -> list[str]:
            found = client.get("/v1/persons", params={"search": term}, headers=admin).json()
            return [p["display_name"] for p in found["items"]]

        assert search("%") == ["Ada 100% Lovelace"] and search("_") == ["Grace_Hopper"]
        assert search("0%") == ["Ada 100% Lovelace"] and search("a%l") == []
        assert search("e_h") == ["Grace_Hopper"] and search("e_o") == []
        # a blank rename is a validation error with its own code
        blank = client.patch("/v1/persons/1", json={"display_name": "   "}, headers=admin)
        assert code(blank) == (422, "invalid_name")


# --- uploads -------------------------------------------------------------------------------------


def test_bad_uploads_get_the_documented_4xx(tmp_path, real_clip):
    store = new_store(tmp_path, max_image_bytes=50_000, max_burst_frames=2)
    store.add_door("lobby")
    admin = {"X-API-Key": store.create_key("root", "admin")[0]}
    with TestClient(create_app(store.settings, store)) as client:

        def access(headers=admin, **kwargs):
            r = client.post("/v1/doors/lobby/access", headers=headers, **kwargs)
            return r.status_code, r.json()["error"]["code"]

        photo = jpeg(np.full((400, 400, 3), 128, np.uint8))
        noise = jpeg(np.random.default_rng(0).integers(0, 255, (600, 600, 3), dtype=np.uint8))
        assert len(noise) > 50_000
        img = lambda data, kind="image/jpeg": [("images", ("a.jpg", data, kind))]  # noqa: E731
        assert access(files=img(noise)) == (413, "payload_too_large")
        assert access(files=img(photo[: len(photo) // 3])) == (422, "image_decode_error")
        assert access(files=img(b"GIF89a" + b"\0" * 100)) == (415, "unsupported_media_type")
        assert access(files=img(photo, "text/plain")) == (415, "unsupported_media_type")
        assert access(files=img(b"")) == (422, "empty_file")
        assert access(files=img(photo) * 3) == (413, "too_many_frames")
        assert access(content=b"x", headers={**admin, "Content-Type": "text/plain"})[0] == 415
        assert access(json={"images": ["%%%"]}) == (422, "invalid_base64")
        assert access(json={"images": []}) == (422, "invalid_request")
        assert access(json={"frames": []}) == (422, "invalid_request")
        # pixel bombs: a few hundred bytes declaring gigabytes of pixels, refused undecoded
        for bomb in (
            bomb_png(40_000, 40_000),
            bomb_jpeg(30_000, 30_000),
            bomb_jpeg(65_000, 65_000),
        ):
            assert access(files=img(bomb, "image/png")) == (413, "too_many_pixels")
            as_json = {"images": [base64.b64encode(bomb).decode()]}
            assert access(json=as_json) == (413, "too_many_pixels")
        # the body limit is checked from Content-Length before anything is read
        big = client.post(
            "/v1/doors",
            content=b"{" + b" " * 2_000_000 + b"}",
            headers={**admin, "Content-Type": "application/json"},
        )
        assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"

        def enroll(data: bytes, kind: str = "video/mp4"):
            r = client.post(
                "/v1/enrollments",
                data={"display_name": "x"},
                files={"video": ("clip.mp4", data, kind)},
                headers=admin,
            )
            return r.status_code, r.json()["error"]["code"]

        clip = real_clip.read_bytes()
        assert enroll(clip[:4000]) == (422, "not_a_video")  # truncated: no frame decodes
        assert enroll(b"\0\0\0\x18ftypmp42" + b"\0" * 500) == (422, "not_a_video")
        assert enroll(b"hello world" * 10) == (415, "unsupported_media_type")
        assert enroll(clip, "image/png") == (415, "unsupported_media_type")
        assert enroll(b"") == (422, "empty_file")
        both = client.post(
            "/v1/enrollments",
            data={"display_name": "x", "source_url": "rtsp://cam/1"},
            files={"video": ("c.mp4", clip, "video/mp4")},
            headers=admin,
        )
        assert both.status_code == 422 and "exactly one" in both.json()["error"]["message"]
        assert list((store.settings.data_dir / "uploads").iterdir()) == []  # nothing left over
        assert store.jobs() == []  # and no job was queued for any of them


# --- jobs ------------------------------------------------------------------------------------------


def test_source_urls_the_server_must_not_fetch_are_refused(tmp_path):
    """SSRF: an admin's source_url may not make the server fetch from itself, its cloud's
    metadata service or private networks, directly or through a redirect."""

    class Redirect(BaseHTTPRequestHandler):
        hits: list[str] = []

        def do_GET(self):
            Redirect.hits.append(self.path)
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()

        def log_message(self, *args):
            pass

    # public addresses pass; private ones only when the allow-list names them
    check_source_url("rtsp://8.8.8.8:554/live", [])
    check_source_url("rtsp://192.168.1.20/live", ["192.168.1.0/24"])
    check_source_url("rtsp://cam.local/live", ["cam.local"])  # named: not even resolved
    with pytest.raises(SourceUrlRefused, match="private"):
        check_source_url("rtsp://192.168.1.20/live", ["192.168.2.0/24"])

    server = HTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    local = f"http://127.0.0.1:{server.server_port}/stream"
    try:
        store = new_store(tmp_path)
        admin = {"X-API-Key": store.create_key("root", "admin")[0]}

        def submit(client, url):
            return client.post(
                "/v1/enrollments", data={"display_name": "x", "source_url": url}, headers=admin
            )

        with TestClient(create_app(store.settings, store)) as client:
            for url in (
                local,
                "http://localhost:8000/",
                "http://169.254.169.254/latest/meta-data/",
                "http://[::1]/x",
                "http://10.0.0.5/x",
                "rtsp://192.168.1.20:554/stream",
                "rtsp://224.0.0.1/x",
                "http://0.0.0.0/x",
                "ftp://example.com/clip.mp4",
                "file:///etc/passwd",
                "http:///no-host",
            ):
                answer = submit(client, url)
                assert answer.status_code == 422, (url, answer.text)
                assert answer.json()["error"]["code"] == "source_url_refused", url
            assert "resolves to a loopback address" in submit(client, local).text
            assert Redirect.hits == [] and store.jobs() == []

        # the allow-list lets the local camera in; its redirect to the metadata service is refused
        allowed = store.settings.model_copy(update={"source_url_allow": "127.0.0.0/8, cam.local"})
        with TestClient(create_app(allowed, store)) as client:
            job = submit(client, local)
            assert job.status_code == 202, job.text
            for _ in range(100):
                done = client.get(f"/v1/enrollments/{job.json()['id']}", headers=admin).json()
                if done["status"] == "failed":
                    break
                time.sleep(0.1)
            assert done["status"] == "failed" and done["error_code"] == "source_url_refused"
            assert "169.254.169.254" in done["error"] and "link-local" in done["error"]
            assert Redirect.hits == ["/stream"]  # checked once, never streamed
    finally:
        server.shutdown()


def test_a_job_interrupted_by_a_restart_is_failed_with_the_reason(store, admin):
    job_id = store.create_job("A", "upload:a.mp4")
    store.update_job(job_id, status="running", stage="personal GAN", progress=0.4)
    # the clips a kill -9 left: the running job's own, and one a request was still writing
    uploads = store.uploads_dir
    uploads.mkdir(parents=True, exist_ok=True)
    (uploads / f"{job_id}.bin").write_bytes(b"the running job's clip")
    (uploads / "upload-1.bin").write_bytes(b"half a clip")
    assert store.stale_uploads() == []  # a live job's clip; a write that may still go on
    os.utime(uploads / "upload-1.bin", (0, 0))  # an hour and more ago: nobody is writing it
    assert [p.name for p in store.stale_uploads()] == ["upload-1.bin"]
    assert any("1 uploaded clip(s)" in p for p in store.check(verify_checksums=False).problems)
    with TestClient(create_app(store.settings, store)) as client:
        job = client.get(f"/v1/enrollments/{job_id}", headers=admin).json()
    assert job["status"] == "failed" and job["error_code"] == "job_interrupted"
    assert "restarted" in job["error"] and job["progress"] == 0.4
    assert list(uploads.iterdir()) == []  # the restart swept both
    (uploads / "no-such-job.bin").write_bytes(b"x")
    assert store.purge()["uploads_removed"] == 1 and list(uploads.iterdir()) == []


def test_an_enrollment_job_says_what_was_wrong_with_the_clip(tmp_path, pipeline, data):
    store = new_store(tmp_path)
    admin = {"X-API-Key": store.create_key("root", "admin")[0]}
    clip = data / "liveportrait_driving" / "d10.mp4"  # frontal, little head turn
    with TestClient(create_app(store.settings, store, pipeline)) as client:
        job = client.post(
            "/v1/enrollments",
            data={"display_name": "Still"},
            files={"video": (clip.name, clip.read_bytes(), "video/mp4")},
            headers=admin,
        ).json()
        deadline = time.monotonic() + 180
        while job["status"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.5)
            job = client.get(f"/v1/enrollments/{job['id']}", headers=admin).json()
    assert job["status"] == "failed" and job["error_code"] == "insufficient_head_turn", job
    assert "missing: left, right" in job["error"] and job["person_id"] is None
    assert list((store.settings.data_dir / "uploads").iterdir()) == []  # the upload is gone
    assert store.find_persons()[0] == 0


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def redis():
    if not _redis_up():
        reason = "no Redis server on 127.0.0.1:6379 (.ci/run starts one)"
        if os.environ.get("FACEGATE_REQUIRE_REDIS") == "1":
            pytest.fail(f"FACEGATE_REQUIRE_REDIS=1 but {reason}")
        pytest.skip(reason)
    return "redis://127.0.0.1:6379/0"


def test_celery_workers_run_enrollment_jobs_over_redis(tmp_path, redis, real_clip):
    queue = f"facegate-test-{uuid.uuid4().hex[:8]}"
    env = {
        "FACEGATE_DATA_DIR": str(tmp_path / "facegate-data"),
        "FACEGATE_JOBS": "celery",
        "FACEGATE_REDIS_URL": redis,
        "FACEGATE_CELERY_QUEUE": queue,
        "FACEGATE_GAN_STEPS": "8",
        "FACEGATE_VERIFIER_STEPS": "8",
        "FACEGATE_GENERAL_STEPS": "8",
        "FACEGATE_GAN_SAMPLES": "8",
    }
    store = new_store(tmp_path, jobs="celery", redis_url=redis, celery_queue=queue)
    admin = {"X-API-Key": store.create_key("root", "admin")[0]}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "api.jobs:celery_app", "worker", "--pool", "solo"]
        + ["--concurrency", "1", "-Q", queue, "--loglevel", "WARNING"],
        env={**os.environ, **env},
        cwd=tmp_path,
    )
    try:
        with TestClient(create_app(store.settings, store)) as client:
            job = upload_clip(client, admin, real_clip, "Remote Person").json()
            seen = set()
            deadline = time.monotonic() + 300
            while job["status"] in ("queued", "running") and time.monotonic() < deadline:
                time.sleep(0.5)
                job = client.get(f"/v1/enrollments/{job['id']}", headers=admin).json()
                seen.add(job["status"])
            assert job["status"] == "succeeded", job
            assert "running" in seen  # the worker reported progress through the database
            assert store.person(job["person_id"])[0].display_name == "Remote Person"
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    # with no worker left, a queued job goes stale and is failed, never left queued forever
    stale = store.settings.model_copy(update={"job_stale_seconds": 0.5})
    with TestClient(create_app(stale, store)) as client:
        job = upload_clip(client, admin, real_clip, "Nobody").json()
        assert job["status"] == "queued"
        time.sleep(1.0)
        job = client.get(f"/v1/enrollments/{job['id']}", headers=admin).json()
    assert job["status"] == "failed" and job["error_code"] == "job_interrupted"
    from celery import Celery

    with Celery(broker=redis).connection_for_write() as conn:
        conn.default_channel.queue_delete(queue)


# --- a real server -----------------------------------------------------------------------------


def test_a_real_uvicorn_process(tmp_path):
    env = {**os.environ, "FACEGATE_DATA_DIR": str(tmp_path / "facegate-data")}
    assert subprocess.run([FACEGATE, "init"], env=env, cwd=tmp_path).returncode == 0
    made = subprocess.run(
        [FACEGATE, "keys", "create", "--name", "root", "--scope", "admin", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    key = {"X-API-Key": json.loads(made.stdout)["key"]}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [FACEGATE, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    import httpx

    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.ConnectError:
                time.sleep(0.25)
        ready = httpx.get(base + "/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"] == "ok"
        assert "/v1/doors/{door}/access" in httpx.get(base + "/openapi.json").json()["paths"]
        assert httpx.get(base + "/v1/doors").status_code == 401
        made = httpx.post(base + "/v1/doors", json={"name": "gate"}, headers=key)
        assert made.status_code == 201
        big = httpx.post(
            base + "/v1/doors/gate/access",
            content=b"0" * 100_000_000,
            headers={**key, "Content-Type": "application/json"},
        )
        assert big.status_code == 413
        missing = httpx.post(base + "/v1/doors/nowhere/access", json={"images": []}, headers=key)
        assert missing.status_code == 422
        assert "facegate_http_requests_total" in httpx.get(base + "/metrics", headers=key).text
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=30)[0].decode()
    # uvicorn shuts down gracefully, then re-raises the signal it caught
    assert server.returncode in (0, -signal.SIGTERM), output
    assert "Finished server process" in output and "Traceback" not in output


def test_an_unreachable_job_queue_is_a_503_that_shows_no_password(tmp_path, real_clip):
    # nothing listens on port 1: the broker cannot be reached
    store = new_store(tmp_path, jobs="celery", redis_url="redis://:s3cret@127.0.0.1:1/0")
    admin = {"X-API-Key": store.create_key("root", "admin")[0]}
    with TestClient(create_app(store.settings, store)) as client:
        answer = upload_clip(client, admin, real_clip, "Nobody")
        assert answer.status_code == 503, answer.text
        error = answer.json()["error"]
        assert error["code"] == "jobs_unavailable" and "FACEGATE_JOBS=inprocess" in error["message"]
        assert "s3cret" not in answer.text and "***@127.0.0.1:1" in error["message"]
        jobs = client.get("/v1/enrollments", headers=admin).json()
        assert "s3cret" not in json.dumps(jobs)
    assert list(store.uploads_dir.iterdir()) == []  # the clip is not kept for a job never queued
