"""All of facegate's settings in one pydantic-settings class (`FACEGATE_*` variables, a `.env` file)."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every field reads from `FACEGATE_<NAME>` (case-insensitive) or a `.env` file in the working directory."""

    model_config = SettingsConfigDict(env_prefix="FACEGATE_", env_file=".env", extra="ignore")

    # --- storage and hardware ---
    data_dir: Path = Field(
        Path("facegate-data"), description="Holds the embedded SQLite database and model artifacts."
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL (e.g. postgresql+psycopg://user@host/db); "
        "None uses SQLite at DATA_DIR/facegate.db.",
    )
    index_approximate_above: int = Field(
        100_000,
        description="Above this many persons the FAISS index is IVF (approximate), else exact "
        "(exact top-10 measured at 10 ms for 100k persons, 512-d, one CPU thread).",
    )
    index_nprobe: int = Field(
        16, description="IVF lists searched per query (recall against speed)."
    )
    event_retention_days: int | None = Field(
        365,
        description="Access events older than this are purged by `facegate db purge`; None keeps them.",
    )
    query_image_retention_days: int | None = Field(
        30,
        description="Stored query images older than this are dropped by the purge; None keeps them.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="'auto' uses CUDA when present, the CPU otherwise."
    )

    # --- face pipeline ---
    embedder: Literal["dlib", "facenet"] = Field(
        "dlib",
        description="dlib: face_recognition_models' ResNet (ships offline); facenet: VGGFace2.",
    )
    dlib_runtime: Literal["torch", "dlib-bin"] = Field(
        "torch",
        description="What runs the dlib embedder: torch (batched, CPU or CUDA; the default) or "
        "dlib-bin (the reference, CPU, one crop at a time). Both give the same vectors.",
    )
    facenet_weights: Path | None = Field(
        None,
        description="Local file of InceptionResnetV1 VGGFace2 weights (state dict) for embedder=facenet.",
    )
    detect_min_face_px: int = Field(40, description="Smallest face MTCNN looks for, in pixels.")
    detect_max_side_px: int = Field(
        960, description="Frames are downscaled to this longest side before detection (speed)."
    )
    detect_batch_size: int = Field(8, description="Frames per batched MTCNN call.")
    gan_crop_px: int = Field(
        64, description="Side of the aligned crops handed to the personal GAN."
    )

    # --- enrollment: sampling ---
    sample_fps: float = Field(5.0, description="Frames per second sampled from a clip.")
    capture_seconds: float = Field(10.0, description="How long to record from a camera or stream.")
    min_clip_seconds: float = Field(4.0, description="Shorter clips are refused.")
    max_clip_seconds: float = Field(60.0, description="Only this much of a longer clip is read.")
    frame_max_side_px: int = Field(
        1280,
        description="Frames and photos larger than this are downscaled as they are read (memory).",
    )

    # --- enrollment: per-face quality gate ---
    min_detection_prob: float = Field(
        0.95, description="MTCNN face probability below this is dropped."
    )
    min_face_px: int = Field(
        80, description="Face box side (geometric mean) below this is dropped."
    )
    min_visible_share: float = Field(
        0.9, description="Share of the face's central region that must lie inside the frame."
    )
    min_sharpness: float = Field(
        40.0,
        description="Variance of the Laplacian of the aligned 150 px grey crop; below is blurred.",
    )
    min_brightness: float = Field(
        50.0, description="Mean grey level (0-255) of the crop; below is dark."
    )
    max_brightness: float = Field(215.0, description="Mean grey level above this is over-exposed.")

    # --- enrollment: identity and pose ---
    same_person_max_distance: float | None = Field(
        None,
        description="Embedding distance under which two faces are the same person; "
        "None uses the embedder's own value (dlib 0.6).",
    )
    identity_cluster_distance: float | None = Field(
        None,
        description="Mean distance (average linkage) above which two groups of faces in one clip "
        "are different people; None uses the embedder's own value (dlib 0.7).",
    )
    max_other_person_share: float = Field(
        0.1,
        description="If more than this share of face frames shows someone else, the clip is refused.",
    )
    pose_frontal_max_deg: float = Field(10.0, description="|yaw| up to this counts as frontal.")
    pose_side_min_deg: float = Field(
        15.0, description="|yaw| from this counts as turned left/right."
    )
    pose_min_faces_per_bin: int = Field(3, description="Kept faces each yaw bin needs.")
    photos_require_pose_coverage: bool = Field(
        False, description="Enforce pose coverage for a photo folder too (clips always enforce it)."
    )
    sample_identity_max_distance: float | None = Field(
        None,
        description="A synthesized sample verifies as the person when its median distance to their "
        "real samples is within this; None uses the embedder's same-person distance (dlib 0.6).",
    )
    collapse_diversity_ratio: float = Field(
        0.5,
        description="Samples less varied than this share of the real crops' diversity flag mode collapse.",
    )
    enroll_min_faces: int = Field(8, description="Fewer good faces than this refuses a clip.")
    enroll_min_photos: int = Field(1, description="Fewer usable photos than this refuses a folder.")
    enroll_max_faces: int = Field(40, description="At most this many diverse faces are kept (K).")

    # --- enrollment: personal GAN and personal discriminator ---
    gan_steps: int = Field(
        240,
        description="Training steps of the personal GAN (batch 32). 240 keeps a whole enrollment's "
        "training near 5 minutes on a 2-core CPU (see the README's benchmark).",
    )
    gan_samples: int = Field(
        64, description="Samples synthesized per person (interpolations of encoded real frames)."
    )
    # 2.0, 2 and 0.15 raise the share of a photo enrollment's samples that verify (0.31-0.73 to
    # 0.72-0.84 for 40 glint photos; README, issue 14)
    gan_photo_steps_factor: float = Field(
        2.0,
        ge=1.0,
        le=10.0,
        description="A photo enrollment's GAN trains this many times gan_steps (photos vary more "
        "than a clip's frames).",
    )
    gan_photo_neighbours: int = Field(
        2,
        ge=0,
        le=20,
        description="A photo enrollment's samples interpolate each crop's latent only with one of "
        "its N nearest in the encoder's space (0: any two, as a clip's samples do).",
    )
    gan_photo_noise_std: float = Field(
        0.15,
        ge=0.0,
        le=1.0,
        description="Latent noise a photo enrollment's samples add to an interpolation (a clip's: "
        "0.3).",
    )
    verifier_steps: int = Field(
        300, description="Fine-tuning steps that turn the GAN's discriminator into the verifier."
    )
    impostor_bank_dir: Path | None = Field(
        None,
        description="Folder of photos of people who will never be enrolled: negatives for every "
        "personal discriminator. None uses the 100 faces of scikit-image's LFW subset.",
    )
    verifier_other_persons: int = Field(
        16,
        description="Up to this many other enrolled persons lend negatives (samples of their "
        "stored generators) to a new person's discriminator.",
    )
    verifier_samples_per_other: int = Field(
        16, description="Samples drawn from each of those persons' generators."
    )
    general_steps: int = Field(
        400, description="Training steps of the general discriminator when it is first trained."
    )
    general_incremental_steps: int = Field(
        150,
        description="Steps the general discriminator trains on after each new enrollment, going "
        "on from the current one.",
    )

    # --- recognition: the door decision ---
    shortlist_k: int = Field(
        8, description="Candidates taken from the index whose personal discriminators are run."
    )
    decision_margin: float = Field(
        2.0,
        description="The best candidate's fused score must lead the runner-up's by this much "
        "(natural-log likelihood ratio; 2.0 is 7.4 times) or the answer is 'unknown'.",
    )
    default_required_level: int = Field(
        6, ge=1, le=10, description="Level (1-10) a query without a door must pass (6: FMR 1e-3)."
    )
    authenticity_min_probability: float = Field(
        0.4,
        description="The general discriminator's calibrated probability of a live capture below "
        "which a face that would otherwise pass is answered 'spoof_suspected'. Its calibration "
        "balances live crops against GAN samples and simulated attacks, which score far lower "
        "than a real screen replay; benchmarks/recognize.py prints all three.",
    )
    authenticity_max_bpcer: float = Field(
        0.02,
        gt=0,
        lt=1,
        description="`facegate calibrate` sets the presentation-attack checks' thresholds so that "
        "at most this share of its calibration faces (bona fide captures from cameras the models "
        "never saw) is rejected: a quarter of it for the general discriminator (never above "
        "authenticity_min_probability), the rest for the synthetic-face check.",
    )
    liveness_min_yaw_change_deg: float = Field(
        15.0, description="Head-turn challenge: the yaw must change by this much across a burst."
    )
    recognize_min_face_px: int = Field(
        60,
        description="Door queries: a face smaller than this is 'poor_quality' (the other quality "
        "figures use the enrollment gate's settings).",
    )
    personal_cache_size: int = Field(
        512, description="Personal discriminators kept loaded on the device (LRU)."
    )
    store_query_images: bool = Field(
        True,
        description="Keep the decision frame (JPEG) with each access event; purged after "
        "QUERY_IMAGE_RETENTION_DAYS.",
    )
    calibration_max_persons: int = Field(
        200, description="Enrolled persons each calibration face is compared with."
    )

    # --- the HTTP API and its jobs ---
    jobs: Literal["inprocess", "celery"] = Field(
        "inprocess",
        description="Where enrollment jobs run: a worker thread of the API process, or Celery "
        "workers over Redis (they must share the database and DATA_DIR with the API).",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="The Celery broker when JOBS=celery."
    )
    celery_queue: str = Field(
        "facegate", description="The Celery queue jobs go to (workers: `-Q` the same name)."
    )
    job_stale_seconds: float = Field(
        900.0,
        description="A Celery job without progress for this long is marked failed (its worker "
        "stopped); in-process jobs left unfinished are failed when the service restarts.",
    )
    max_image_bytes: int = Field(
        8_000_000, description="Largest image accepted by a door query (each frame)."
    )
    max_burst_frames: int = Field(8, description="Most frames one door query may send.")
    max_clip_bytes: int = Field(
        100_000_000, description="Largest enrollment clip accepted by upload."
    )
    max_image_pixels: int = Field(
        40_000_000,
        ge=1,
        description="Pictures whose header declares more pixels than this are refused before "
        "decoding (413 too_many_pixels; photos over it are skipped at enrollment).",
    )
    source_url_allow: str = Field(
        "",
        description="Comma-separated networks (192.168.10.0/24) and host names an enrollment's "
        "source_url may reach although they are loopback, link-local, private or multicast.",
    )
    batch_max_queries: int = Field(
        8, ge=1, description="Concurrent door queries decided in one batched model pass."
    )
    decision_workers: int = Field(
        2,
        ge=1,
        description="Threads deciding door queries, each with its own copy of the models (on 2 "
        "CPU cores two answered 1.5x the queries of one: benchmarks/api_load.py).",
    )
    batch_window_ms: float = Field(
        5.0,
        ge=0,
        description="How long a door query may wait for others to join its batch (only when "
        "the models are idle; queries that queued behind a batch go at once).",
    )
    max_queued_queries: int = Field(
        64,
        ge=1,
        description="Door queries that may wait for the models; one more is answered 503 "
        "'overloaded' with Retry-After.",
    )
    decision_timeout_s: float = Field(
        10.0,
        gt=0,
        description="A door query not answered within this is 503 'decision_timeout' (one still "
        "waiting is dropped unrun).",
    )
    rate_limit_per_minute: int = Field(
        600, description="Requests per API key per minute (a token bucket; bursts up to a tenth)."
    )
    webhook_url: str | None = Field(
        None, description="Every access event is POSTed here as JSON (None: no webhook)."
    )
    webhook_secret: str | None = Field(
        None,
        description="Signs webhook bodies: X-Facegate-Signature is sha256=HMAC(secret, "
        "timestamp + '.' + body); required when WEBHOOK_URL is set.",
    )
    webhook_max_attempts: int = Field(
        5, description="Deliveries tried per event (backoff 0.5 s, doubling) before giving up."
    )
    webhook_timeout_s: float = Field(5.0, description="Timeout of one webhook delivery.")
    console_session_hours: float = Field(
        8.0, gt=0, le=24 * 30, description="A console sign-in lasts this long."
    )
    mqtt_url: str | None = Field(
        None,
        description="MQTT broker every access event and enrollment job event is published to: "
        "mqtt://[user:password@]host[:1883] or mqtts:// for TLS (None: no MQTT).",
    )
    mqtt_topic_prefix: str = Field(
        "facegate",
        pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$",
        description="First topic levels: <prefix>/<door>/access, <prefix>/<door>/state "
        "(retained), <prefix>/enrollment, <prefix>/availability.",
    )
    mqtt_queue_max: int = Field(
        10_000,
        ge=1,
        description="Events held in memory while the broker is away; beyond it new events are "
        "counted as dropped and logged (a decision never waits for the broker).",
    )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment and `.env`."""
    return Settings()
