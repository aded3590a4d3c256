"""Settings come from FACEGATE_* variables and a .env file, with documented defaults."""

from pathlib import Path

from facegate.settings import Settings


def test_defaults_are_the_documented_ones():
    s = Settings(_env_file=None)
    assert s.data_dir == Path("facegate-data")
    assert s.embedder == "dlib" and s.device == "auto"
    assert s.enroll_max_faces == 40 and s.gan_crop_px == 64
    assert all(field.description for field in Settings.model_fields.values())


def test_environment_variables_override_defaults(monkeypatch):
    monkeypatch.setenv("FACEGATE_SAMPLE_FPS", "2.5")
    monkeypatch.setenv("FACEGATE_DATA_DIR", "/srv/facegate")
    s = Settings(_env_file=None)
    assert s.sample_fps == 2.5 and s.data_dir == Path("/srv/facegate")


def test_a_dotenv_file_is_read(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("FACEGATE_ENROLL_MAX_FACES=24\nFACEGATE_EMBEDDER=facenet\n")
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert s.enroll_max_faces == 24 and s.embedder == "facenet"
