"""The `facegate` command as a user runs it: help everywhere, JSON on request, errors without tracebacks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FACEGATE = str(Path(sys.executable).with_name("facegate"))
SUBCOMMANDS = ["init", "enroll", "recognize", "serve", "demo"]


def run(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    return subprocess.run(
        [FACEGATE, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=300
    )


def test_every_subcommand_has_help(tmp_path):
    top = run("--help", cwd=tmp_path)
    assert top.returncode == 0
    for name in SUBCOMMANDS:
        assert name in top.stdout
        sub = run(name, "--help", cwd=tmp_path)
        assert sub.returncode == 0 and "Usage" in sub.stdout, name
    assert "--video" in run("enroll", "--help", cwd=tmp_path).stdout
    assert "--report" in run("recognize", "--help", cwd=tmp_path).stdout


def test_init_creates_the_data_folder_named_in_the_environment(tmp_path):
    target = tmp_path / "store"
    result = run("init", "--json", cwd=tmp_path, env={"FACEGATE_DATA_DIR": str(target)})
    assert result.returncode == 0
    assert json.loads(result.stdout)["data_dir"] == str(target)
    assert target.is_dir()


def test_enroll_json_prints_one_object_with_the_summary_and_frame_table(tmp_path, data):
    clip = data / "liveness_replay_pyimagesearch" / "real.mov"
    result = run("enroll", "--name", "Door Tester", "--video", str(clip), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    obj = json.loads(result.stdout)  # the whole of stdout is one JSON object
    summary = obj["enrollment"]
    assert obj["ok"] is True and summary["name"] == "Door Tester"
    assert min(summary["pose_coverage"].values()) >= 3
    assert len(obj["frames"]) == summary["frames_sampled"]
    assert {"frame_index", "time_s", "sharpness", "yaw_deg", "drop_reason", "selected"} <= set(
        obj["frames"][0]
    )


def test_enroll_prints_the_summary_for_people(tmp_path, data):
    clip = data / "liveness_replay_pyimagesearch" / "real.mov"
    result = run("enroll", "--name", "Door Tester", "--video", str(clip), "--frames", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pose coverage (good faces): left" in result.stdout
    assert "dropped:" in result.stdout and "selected" in result.stdout


@pytest.mark.parametrize("as_json", [False, True])
def test_a_bad_clip_is_an_error_message_not_a_traceback(tmp_path, as_json):
    bad = tmp_path / "clip.mp4"
    bad.write_text("this is not a video")
    result = run(
        "enroll", "--name", "x", "--video", str(bad), *(["--json"] if as_json else []), cwd=tmp_path
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    if as_json:
        assert json.loads(result.stdout) == {
            "ok": False,
            "error": {
                "code": "not_a_video",
                "message": f"{bad} is not a video OpenCV can read (MP4, MOV, WebM, AVI, ...)",
            },
        }
    else:
        assert result.stderr.startswith("error [not_a_video]:")


def test_enroll_needs_exactly_one_source(tmp_path):
    result = run("enroll", "--name", "x", cwd=tmp_path)
    assert result.returncode == 1 and "exactly one source" in result.stderr


def test_stages_from_later_issues_say_so_and_fail_closed(tmp_path):
    result = run("recognize", "door.jpg", "--json", cwd=tmp_path)
    assert result.returncode == 3
    assert json.loads(result.stdout)["error"]["code"] == "not_built_yet"
    assert run("serve", cwd=tmp_path).returncode == 3


def test_the_demo_enrolls_and_answers_door_queries_from_shipped_faces(tmp_path):
    result = run("demo", "--json", cwd=tmp_path, env={"FACEGATE_DATA_DIR": str(tmp_path / "d")})
    assert result.returncode == 0, result.stderr
    obj = json.loads(result.stdout)
    decisions = [q["decision"] for q in obj["queries"]]
    assert decisions == ["grant", "unknown", "no_face"]
    granted, stranger = obj["queries"][0], obj["queries"][1]
    assert granted["nearest_distance"] < 0.4 < 0.6 < stranger["nearest_distance"]
    assert any("issue 5" in p for p in obj["pending"])
