"""The web console in a real headless Chromium (Debian's package, driven by Playwright) against
a real uvicorn server: sign in, enroll a person from a real clip by upload and watch the job reach
100%, see their GAN sample grid, create a door, let them through and make a door key, ask the door
from the try page with a real photo, find the event in the live log and open its report, delete
the person and see their face gone from that report; an audit key sees the log only and a door
key cannot sign in. Screenshots of every page go to build/screenshots/ (or
FACEGATE_SCREENSHOTS), not committed."""

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import cv2
import pytest

from api.app import create_app

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture says so, and skips or fails
    expect = None
from recognize import Recognizer
from tests.conftest import read_clip
from tests.test_api import new_store

CHROMIUM = os.environ.get("FACEGATE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(
    os.environ.get("FACEGATE_SCREENSHOTS", Path(__file__).parents[1] / "build" / "screenshots")
)


@pytest.fixture
def browser():
    reason = None
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"no Chromium at {CHROMIUM} (Debian package chromium)"
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        reason = "playwright is not installed (pip install playwright)"
    if reason:
        if os.environ.get("FACEGATE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"FACEGATE_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # the camera is Chromium's own test pattern (no face in it), allowed without a prompt
        fake_camera = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", *fake_camera])
        yield chromium
        chromium.close()


def wait_for(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


class Server:
    """The app under a real uvicorn on a free port, in a thread."""

    def __init__(self, app):
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started, "uvicorn did not start within 30 s"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


VARIABLE_RATE_RECORDING = """
async () => {
  // 6 s of a canvas recorded by MediaRecorder, frames at 30 per second, then 4, then 30 again:
  // what a loaded computer's camera recording looks like to the server
  const canvas = document.createElement("canvas");
  canvas.width = 320; canvas.height = 240;
  const g = canvas.getContext("2d");
  const track = canvas.captureStream(0).getVideoTracks()[0];
  const recorder = new MediaRecorder(new MediaStream([track]), {mimeType: "video/webm"});
  const parts = [];
  recorder.ondataavailable = (e) => parts.push(e.data);
  const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
  recorder.start();
  const t0 = performance.now();
  let frames = 0;
  while (performance.now() - t0 < 6000) {
    const t = performance.now() - t0;
    g.fillStyle = `rgb(${(frames * 7) % 255}, 90, 90)`;
    g.fillRect(0, 0, 320, 240);
    track.requestFrame();
    frames++;
    await new Promise((r) => setTimeout(r, t > 2000 && t < 4500 ? 250 : 33));
  }
  recorder.stop();
  await stopped;
  const bytes = new Uint8Array(await new Blob(parts).arrayBuffer());
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return [btoa(text), frames];
}
"""


def test_a_browsers_variable_rate_recording_is_read_whole_not_refused(tmp_path, browser):
    """A WebM from MediaRecorder declares more frames (duration x nominal rate) than it holds when
    the recording computer was busy; its time stamps say it is whole (the console's camera
    enrollment was refused as truncated before this)."""
    import base64

    import cv2 as cv

    from enroll.sources import read_video
    from facegate.errors import TruncatedVideoError

    page = browser.new_page()
    try:
        page.goto("about:blank")
        data, drawn = page.evaluate(VARIABLE_RATE_RECORDING)
    finally:
        page.close()
    clip = tmp_path / "camera.webm"
    clip.write_bytes(base64.b64decode(data))
    declared = cv.VideoCapture(str(clip)).get(cv.CAP_PROP_FRAME_COUNT)
    read = read_video(clip, sample_fps=5, max_seconds=20)
    assert read.frames_read < 0.9 * declared  # what used to be called truncated
    assert abs(read.frames_read - drawn) <= 2 and 5.5 <= read.duration_s <= 6.5
    # a recording cut short is still refused
    cut = tmp_path / "cut.webm"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    with pytest.raises(TruncatedVideoError, match="truncated or damaged: its header promises"):
        read_video(cut, sample_fps=5, max_seconds=20)


def test_the_console_in_a_real_browser(
    tmp_path, browser, pipeline, data, real_clip, calibration_faces
):
    SHOTS.mkdir(parents=True, exist_ok=True)
    store = new_store(tmp_path, gan_steps=40, verifier_steps=120, general_steps=120)
    admin_key = store.create_key("root", "admin")[0]
    audit_key = store.create_key("officer", "audit")[0]
    frames, _ = read_clip(data / "liveness_replay_pyimagesearch" / "fake.mp4", max_frames=10)
    photo = tmp_path / "at-the-door.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(frames[9], cv2.COLOR_RGB2BGR))
    server = Server(create_app(store.settings, store, pipeline))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("dialog", lambda dialog: dialog.accept())
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))

    def shot(name: str) -> None:
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def ready() -> None:
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)

    def sign_in(key: str, lands_on: str | None = None) -> str | None:
        """Sign in with `key`: the page it lands on is ready, or the refusal is returned."""
        page.fill("#key", key)
        page.click("button[type=submit]")
        if lands_on is None:
            return page.text_content("#sign-in-error")
        page.wait_for_url(f"**/console/{lands_on}")
        ready()
        return None

    try:
        # sign in: the key goes to the server once; the browser keeps an HttpOnly cookie
        page.goto(server.url + "/")
        assert page.url.endswith("/login")
        shot("01-sign-in")
        assert "unknown or revoked key" in sign_in("not-a-key")
        sign_in(admin_key, "persons")
        (cookie,) = page.context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert admin_key not in cookie["value"] and admin_key not in page.url

        # enroll from the real head-turn clip, by upload; the progress is followed live (SSE)
        page.click("text=Enroll a person")
        ready()
        page.fill("#display-name", "Test Person")
        page.fill("#external-id", "EMP-7")
        page.set_input_files("#clip", str(real_clip))
        page.click("#start-enroll")
        page.wait_for_selector("#job:not([hidden])")
        expect(page.locator("#percent")).to_have_text("100%", timeout=600_000)
        page.wait_for_selector("#job-done:not([hidden])")
        assert "is enrolled" in page.text_content("#status")
        assert wait_for(lambda: page.locator("#job-grid").evaluate("i => i.naturalWidth") == 512)
        shot("02-enrolled")

        # a clip recorded with the camera (MediaRecorder) is uploaded the same way; this one shows
        # no face, and the job says so
        page.reload()
        ready()
        page.fill("#display-name", "Camera Test")
        page.click("#record")
        expect(page.locator("#recorded")).to_contain_text("recorded", timeout=30_000)
        page.click("#start-enroll")
        expect(page.locator("#job-error")).to_contain_text("no_face", timeout=120_000)
        shot("02b-camera-clip-refused")

        page.click("nav >> text=Persons")
        ready()
        row = page.locator("#persons tbody tr", has_text="Test Person")
        assert row.count() == 1 and "EMP-7" in row.inner_text()
        grid = row.locator("img.grid")
        assert wait_for(lambda: grid.evaluate("i => i.complete && i.naturalWidth") == 512)
        person_id = int(row.get_attribute("data-person"))
        shot("03-persons")

        # the levels are calibrated on people never enrolled (the console shows the table)
        Recognizer(store, pipeline).calibrate(calibration_faces, "celeba_wild 40-79")

        # a door, the person let through it, and a door key shown once
        page.click("nav >> text=Doors and keys")
        ready()
        page.fill("#door-name", "lobby")
        page.fill("#door-level", "6")
        page.click("#add-door")
        page.wait_for_selector("#doors tbody tr[data-door='lobby']")
        page.select_option("#policy-door", "lobby")
        page.select_option("#policy-person", str(person_id))
        page.click("#add-policy")
        page.wait_for_selector("#policies tbody tr >> text=Test Person")
        page.fill("#key-name", "lobby controller")
        page.select_option("#key-scope", "door")
        page.select_option("#key-door", "lobby")
        page.click("#add-key")
        page.wait_for_selector("#new-key-box:not([hidden])")
        door_key = page.text_content("#new-key")
        assert len(door_key) >= 20 and store.authenticate(door_key).door == "lobby"
        assert door_key not in page.inner_text("#keys")  # listed by prefix only
        shot("04-doors-and-keys")

        # try the door with a real photo of the person
        page.click("nav >> text=Try the door")
        ready()
        page.select_option("#try-door", "lobby")
        page.set_input_files("#try-photo", str(photo))
        page.click("#try-submit")
        page.wait_for_selector("#answer:not([hidden])", timeout=120_000)
        decision = page.text_content("#answer-decision")
        assert decision.startswith("grant (Test Person)"), page.text_content("#answer-reason")
        event_id = int(page.text_content("#status").split()[1])
        shot("05-try-the-door")
        page.set_input_files("#try-photo", [])
        page.click("#try-camera")
        expect(page.locator("#status")).to_contain_text("frame taken")
        page.click("#try-submit")
        expect(page.locator("#answer-decision")).to_have_text("no_face", timeout=60_000)

        # the live log shows it; its report opens with the face
        page.click("nav >> text=Access log")
        ready()
        entry = page.locator(f"#events tbody tr[data-event='{event_id}']")
        entry.wait_for()
        assert "grant" in entry.inner_text() and f"person {person_id}" in entry.inner_text()
        shot("06-access-log")
        entry.locator("text=report").click()
        page.wait_for_url(f"**/v1/events/{event_id}/report.html")
        assert page.locator("img[alt=face]").count() == 1 and "Test Person" in page.content()
        report_url = page.url
        shot("07-report")

        # delete the person: their face leaves the report
        page.goto(server.url + "/console/persons")
        ready()
        page.locator("#persons tbody tr", has_text="Test Person").locator("text=Delete").click()
        page.wait_for_selector("#persons tbody tr >> text=Test Person", state="detached")
        assert "deleted" in page.text_content("#status")
        page.goto(report_url)
        assert page.locator("img[alt=face]").count() == 0
        shot("08-report-after-deletion")

        page.goto(server.url + "/console/evaluation")
        ready()
        assert "impostor trials" in page.text_content("#levels-source")
        assert page.locator("#levels tbody tr").count() == 10
        shot("09-evaluation")

        # an audit key sees the log and the reports only; a door key cannot sign in
        page.click("#sign-out")
        page.wait_for_url("**/login")
        assert "cannot sign in" in sign_in(door_key)
        sign_in(audit_key, "log")
        assert page.locator("nav a").all_inner_texts() == ["Access log", "Evaluation"]
        assert page.locator(f"#events tbody tr[data-event='{event_id}']").count() == 1
        shot("10-audit-log")
        assert page.goto(server.url + "/console/doors").status == 403
        assert problems == [], problems
    finally:
        page.close()
        server.stop()
        store.close()
