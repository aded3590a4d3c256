"""Steps 5-7 of the paper in one call: a frame (or a burst) from a door -> an access decision with
every stage's score, threshold and latency.

    detect and pick the face -> quality gate -> embed -> shortlist (FAISS) -> the candidates'
    personal discriminators in one batched pass -> fusion and 1-10 level -> authenticity (the
    general discriminator, the synthetic-face check) -> head-turn challenge (bursts) -> door policy

The decision is open-set: a grant needs the best candidate to pass the door's level AND lead the
runner-up by the margin; anything less is 'unknown', never the nearest name. 'spoof_suspected' is
the answer for a face that would otherwise pass but fails a presentation-attack check (the general
discriminator, the synthetic-face check, the head-turn challenge; recognize/authenticity.py). A
face that matches nobody is 'unknown' whatever the checks say: it cannot open a door; their scores
are in every report all the same.
"""

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import cv2
import numpy as np
import torch

from db import Store
from db.artifacts import ArtifactError
from facegate.errors import ConfigurationError
from facegate.settings import Settings
from gan.verifier import CalibratedDiscriminator
from recognize.authenticity import Authenticity, SyntheticCheck
from recognize.decision import AccessDecision, CandidateScore, StageResult
from recognize.detect import DetectedFace
from recognize.discriminators import PersonalDiscriminators
from recognize.fusion import candidate_features, person_norm
from recognize.levels import LevelTable, embedding_logit, fuse, probability
from recognize.liveness import head_turn
from recognize.pipeline import FacePipeline, face_distance
from recognize.quality import FaceQuality, door_gate, measure_quality, quality_issue
from recognize.report import build_report
from recognize.shortlist import Candidate, shortlist

QUERY_IMAGE_MAX_SIDE_PX = 640  # the decision frame kept with an event is at most this large


class Recognizer:
    """Keywords:
    store: the database of enrolled persons, doors and events.
    pipeline: the face pipeline (default: built from the store's settings).
    settings: the decision's settings (default: the store's).
    """

    def __init__(
        self, store: Store, pipeline: FacePipeline | None = None, settings: Settings | None = None
    ):
        self.store = store
        self.settings = settings or store.settings
        # a door's detector need not look for faces the quality gate would refuse as too small
        # (fewer pyramid levels: measured in benchmarks/recognize.py)
        smallest = max(self.settings.detect_min_face_px, self.settings.recognize_min_face_px)
        self.pipeline = pipeline or FacePipeline(
            self.settings.model_copy(update={"detect_min_face_px": smallest})
        )
        self.embedder = self.settings.embedder
        self.device = self.pipeline.device
        self.personal = PersonalDiscriminators(
            lambda person_id: store.artifact(person_id, "personal_discriminator"),
            self.device,
            self.settings.personal_cache_size,
        )
        # the quality settings a door's faces are judged by (calibration faces too)
        self.quality_gate = door_gate(self.settings)
        self._general: CalibratedDiscriminator | None = None
        self._general_sha256: str | None = None
        self._levels: LevelTable | None = None
        self._checks: Checks | None = None
        self._norms: dict[int, tuple[float, float]] = {}  # person id -> cohort_norm
        self._cohort: np.ndarray | None = None
        self.unavailable_artifacts = 0  # candidates scored without their (broken) discriminator
        self._stamp = store.models_stamp(self.embedder)

    # --- models ---------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the general discriminator and the level table (after enrollments or a
        calibration); personal discriminators stay cached, keyed by person id."""
        self._general = None
        self._levels = None
        self._checks = None
        self._norms, self._cohort = {}, None
        self._stamp = self.store.models_stamp(self.embedder)

    def refresh_if_changed(self) -> None:
        """Reload when another process (an enrollment worker, `facegate calibrate`) replaced the
        general discriminator or the level table since the last load."""
        if self.store.models_stamp(self.embedder) != self._stamp:
            self.refresh()

    def general(self) -> CalibratedDiscriminator:
        if self._general is None:
            data = self.store.general_discriminator()
            if data is None:
                raise ConfigurationError(
                    "no general discriminator is stored: enroll at least one person with "
                    "`facegate enroll` (it trains one) before answering door queries"
                )
            self._general = CalibratedDiscriminator.from_bytes(data, self.device)
            self._general_sha256 = hashlib.sha256(data).hexdigest()
        return self._general

    def checks(self) -> "Checks":
        """The presentation-attack checks as the level table calibrated them
        (recognize/authenticity.py), or the setting's P(live) threshold alone before any
        calibration of them."""
        if self._checks is None:
            table = self.levels()
            setting = self.settings.authenticity_min_probability
            if table.authenticity is None:
                self._checks = Checks(setting, "general discriminator (the setting's threshold)")
            else:
                found = Authenticity.from_dict(table.authenticity)
                self.general()
                detail = (
                    f"general discriminator (threshold calibrated on {found.bona_fide} faces "
                    f"never enrolled"
                )
                if found.general_sha256 and found.general_sha256 != self._general_sha256:
                    detail += (
                        "; the discriminator was retrained since (an enrollment): run "
                        "`facegate calibrate` again"
                    )
                self._checks = Checks(
                    min(found.general_threshold, setting),
                    detail + ")",
                    found.synthetic_check(),
                    found.synthetic_threshold,
                )
        return self._checks

    def levels(self) -> LevelTable:
        if self._levels is None:
            saved = self.store.level_table(self.embedder)
            if saved is None:
                raise ConfigurationError(
                    f"the security levels are not calibrated for embedder {self.embedder!r}: run "
                    "`facegate calibrate --faces DIR` with photos of people who will never be "
                    "enrolled (one folder per identity)"
                )
            self._levels = LevelTable.from_dict(saved)
        return self._levels

    def calibrate(
        self,
        faces,
        source: str,
        max_persons: int | None = None,
        fusion: bool = True,
    ) -> LevelTable:
        """Calibrate and store the levels and the fusion from `faces` (a FaceSet of people never
        enrolled), then use them."""
        from recognize.calibration import calibrate

        try:
            general = self.general()
        except ConfigurationError:  # nobody enrolled through the product yet: nothing to report
            general = None
        table = calibrate(
            self.store,
            self.embedder,
            faces,
            self.personal,
            source,
            max_persons or self.settings.calibration_max_persons,
            general=general,
            authenticity_threshold=self.settings.authenticity_min_probability,
            fusion=fusion,
            max_bpcer=self.settings.authenticity_max_bpcer,
            general_sha256=self._general_sha256,
        )
        self.refresh()
        return table

    # --- stages, each usable alone ----------------------------------------------------------------

    def pick_face(
        self, frame: np.ndarray, found: list[DetectedFace], region: Sequence[float] | None
    ) -> DetectedFace | None:
        """The largest face, or the largest whose box centre lies in the door's region."""
        if region is not None:
            h, w = frame.shape[:2]
            x0, y0, x1, y1 = region
            found = [
                f
                for f in found
                if x0 * w <= (f.box[0] + f.box[2]) / 2 <= x1 * w
                and y0 * h <= (f.box[1] + f.box[3]) / 2 <= y1 * h
            ]
        return max(found, key=lambda f: f.size_px, default=None)

    def quality_issue(self, quality: FaceQuality) -> str | None:
        return quality_issue(quality, self.quality_gate)

    @torch.no_grad()
    def authenticity(self, crops_64: np.ndarray) -> np.ndarray:
        """The general discriminator's calibrated P(live capture) of (N, 64, 64, 3) crops."""
        return self.general().probability(crops_64)

    def score_candidates(self, vector: np.ndarray, crop_64: np.ndarray) -> list[CandidateScore]:
        """Shortlist, the batched personal discriminators and fusion; best first."""
        table = self.levels()
        found = shortlist(self.store, self.embedder, vector, self.settings.shortlist_k)
        return self.fuse_candidates(found, crop_64, table)

    def fuse_candidates(
        self, found: list[Candidate], crop_64: np.ndarray, table: LevelTable
    ) -> list[CandidateScore]:
        """The personal discriminators of the shortlisted persons that have one, in one pass,
        fused with their embedding distances; best first."""
        with_models = self.store.holding("personal_discriminator", [c.person_id for c in found])
        # a missing or damaged file costs its person the discriminator, never the whole door
        unavailable: dict[int, str] = {}
        usable = []
        for c in found:
            if c.person_id not in with_models:
                continue
            try:
                self.personal.get(c.person_id)
                usable.append(c.person_id)
            except ArtifactError as error:
                unavailable[c.person_id] = f"personal discriminator unavailable: {error.message}"
                self.unavailable_artifacts += 1
        logits = dict(zip(usable, self.personal.score(usable, crop_64).tolist(), strict=True))
        fusion = table.fused_model()
        norms = self._cohort_norms([c.person_id for c in found], table) if fusion else {}
        out = []
        for c in found:
            personal = logits.get(c.person_id)
            contributions = None
            if fusion is not None and c.real_distances is not None:
                features = candidate_features(
                    c.real_distances[None],
                    c.synthetic_distances,
                    personal,
                    table.embedding_platt,
                    norms.get(c.person_id),
                )[0]
                fused = float(fusion.score(features[None])[0])
                contributions = fusion.contributions(features)
            else:
                fused = float(fuse(c.nearest_distance, personal or 0.0, table.embedding_platt))
            out.append(
                CandidateScore(
                    person_id=c.person_id,
                    display_name=c.display_name,
                    distance=c.nearest_distance,
                    embedding_logit=float(
                        embedding_logit(c.nearest_distance, table.embedding_platt)
                    ),
                    personal_logit=personal,
                    fused=fused,
                    probability=float(probability(fused)),
                    level=table.level(fused),
                    contributions=contributions,
                    unavailable=unavailable.get(c.person_id),
                )
            )
        return sorted(out, key=lambda c: -c.fused)

    # --- the one call -----------------------------------------------------------------------------

    def identify(
        self,
        frames: Sequence[np.ndarray],
        door: str | None = None,
        when: datetime | None = None,
        record: bool = True,
    ) -> AccessDecision:
        """RGB frames (one, or a burst) -> the decision; recorded as an access event unless
        `record` is False."""
        (result,) = self.identify_many([Query(list(frames), door, when)], record)
        if isinstance(result, Exception):
            raise result
        return result

    def identify_many(
        self, queries: Sequence["Query"], record: bool = True
    ) -> list["AccessDecision | Exception"]:
        """Several queries (from several doors) in one batched pass: one detection call over all
        their frames, one general-discriminator and one embedder call over all their faces, then
        each query's shortlist, personal discriminators and decision. Each query gets its
        decision, or the exception that stopped it alone (an unknown door, no frames); the
        latencies are the batch's stages, which every query of it waited for."""
        clock = _Clock()
        table = self.levels()
        self.general()  # refuses before any work when none is stored
        states: list[_State] = []
        for query in queries:
            try:
                states.append(self._begin(query, table))
            except Exception as error:  # this query's own fault (an unknown door, no frames)
                states.append(_State(query.frames, None, query.when, None, error=error))

        def each(step, going: list[_State], lap: str) -> list[_State]:
            """`step` on each query still going, a failure failing that query alone; then the
            lap, which the queries decided at this stage keep as their last."""
            for state in going:
                try:
                    step(state)
                except Exception as error:
                    state.error = error
            clock.lap(lap)
            for state in going:
                if state.done or state.error:
                    state.laps, state.total_ms = dict(clock.laps), clock.total()
            return [state for state in going if not (state.done or state.error)]

        going = [state for state in states if state.error is None]
        frames = [frame for state in going for frame in state.frames]
        found = iter(self.pipeline.detect(frames) if frames else ())
        going = each(
            lambda state: self._pick(state, [next(found) for _ in state.frames]), going, "detect"
        )
        going = each(self._gate, going, "quality")
        if going:
            crops = np.stack([state.crop_64 for state in going])
            for state, live in zip(going, self.authenticity(crops).tolist(), strict=True):
                state.live = float(live)
            check = self.checks().synthetic
            if check is not None:  # every good frame of a burst: scored in one call
                scores = iter(check.score(np.concatenate([s.good_64 for s in going])).tolist())
                for state in going:
                    state.synthetic_frames = [next(scores) for _ in state.good]
        going = each(self._authenticity_stage, going, "authenticity")
        if going:
            vectors = self.pipeline.embed([crop for state in going for crop in state.crops])
            start = 0
            for state in going:
                state.vectors = vectors[start : start + len(state.crops)]
                start += len(state.crops)
        going = each(lambda state: None, going, "embed")
        going = each(self._shortlist_stage, going, "shortlist")
        going = each(lambda state: self._fuse_stage(state, table), going, "personal_discriminators")
        going = each(self._decision_stage, going, "decision")
        total = clock.total()
        results: list[AccessDecision | Exception] = []
        for state in states:
            if state.error is None:
                laps = state.laps if state.laps is not None else clock.laps
                state.out.latency_ms = laps | {
                    "total": state.total_ms if state.laps is not None else total
                }
                if record:
                    try:
                        state.out.event_id = self._record(state.out, state.frames)
                    except Exception as error:
                        state.error = error
            results.append(state.error if state.error is not None else state.out)
        return results

    def _cohort_norms(
        self, person_ids: list[int], table: LevelTable
    ) -> dict[int, tuple[float, float]]:
        """Each person's cohort_norm against the calibration faces the table keeps (none for a
        table calibrated without a cohort), cached per person until the next refresh."""
        if self._cohort is None:
            self._cohort = table.cohort_embeddings()
            if self._cohort is None:
                return {}
        missing = [p for p in person_ids if p not in self._norms]
        if missing:
            for p, real in self.store.samples(missing, self.embedder).items():
                self._norms[p] = person_norm(
                    face_distance(self._cohort, real), table.embedding_platt
                )
        return {p: self._norms[p] for p in person_ids if p in self._norms}

    def _authenticity_stage(self, state: "_State") -> None:
        checks = self.checks()
        state.out.stages.append(
            _at_least("authenticity", state.live, checks.general_threshold, checks.general_detail)
        )

    def _shortlist_stage(self, state: "_State") -> None:
        vector = state.vectors[state.best]
        state.shortlist = shortlist(self.store, self.embedder, vector, self.settings.shortlist_k)

    def _fuse_stage(self, state: "_State", table: LevelTable) -> None:
        state.out.candidates = self.fuse_candidates(state.shortlist, state.crop_64, table)

    def _decision_stage(self, state: "_State") -> None:
        self._synthetic_stage(state)
        self._head_turn(state)
        self._conclude(state.out, state.info, self._spoof(state), state.when)

    def _synthetic_stage(self, state: "_State") -> None:
        """The synthetic-face check's score: its mean over the burst's frames that passed the
        quality gate and show the decision face's person (one frame: that frame's). One frame of
        a person turning at the door may be motion-blurred, and the spectrum reads blur."""
        if state.synthetic_frames is None:
            return
        checks = self.checks()
        limit = self._same_person_distance()
        best = state.vectors[state.best]
        scores = [
            score
            for j, score in zip(state.good, state.synthetic_frames, strict=True)
            if j == state.best or float(np.linalg.norm(state.vectors[j] - best)) <= limit
        ]
        state.synthetic = float(np.mean(scores))
        frames = f"; the mean of {len(scores)} frames" if len(scores) > 1 else ""
        state.out.stages.append(
            _at_least(
                "synthetic",
                state.synthetic,
                checks.synthetic_threshold,
                f"synthetic-face check (the 64 px crop's spectrum{frames})",
            )
        )

    def _same_person_distance(self) -> float:
        return (
            self.settings.same_person_max_distance
            or self.pipeline.embedder.same_person_max_distance
        )

    def _spoof(self, state: "_State") -> str | None:
        """Why the face looks like a presentation attack, or None when both checks pass."""
        checks = self.checks()
        if state.live < checks.general_threshold:
            return (
                f"the general discriminator gives P(live capture) = {state.live:.3f} (threshold "
                f"{checks.general_threshold:.3g}): a photo, screen or synthetic face?"
            )
        if state.synthetic is not None and state.synthetic < checks.synthetic_threshold:
            return (
                f"the synthetic-face check scores {state.synthetic:.2f} (threshold "
                f"{checks.synthetic_threshold:.2f}): a generated face?"
            )
        return None

    def _begin(self, query: "Query", table: LevelTable) -> "_State":
        if not query.frames:
            raise ValueError("identify needs at least one frame")
        info = self.store.door(query.door) if query.door else None
        required = info.required_level if info else self.settings.default_required_level
        out = AccessDecision(
            "unknown",
            "",
            query.door,
            required,
            door_id=info.id if info else None,
            frames=len(query.frames),
            levels=table,
        )
        return _State(list(query.frames), info, query.when, out)

    def _pick(self, s: "_State", found: list[list[DetectedFace]]) -> None:
        region = s.info.region if s.info else None
        s.faces = [
            (i, face)
            for i, (frame, per_frame) in enumerate(zip(s.frames, found, strict=True))
            if (face := self.pick_face(frame, per_frame, region))
        ]
        seen = sum(len(f) for f in found)
        s.out.stages.append(StageResult("detect", bool(s.faces), detail=f"{seen} faces seen"))
        if not s.faces:
            s.done = True
            s.out.decision = "no_face"
            smallest = self.pipeline.detector.min_face_px
            tiny = [f for f in s.frames if min(f.shape[:2]) < smallest]
            if len(tiny) == len(s.frames):
                h, w = tiny[0].shape[:2]
                s.out.reason = (
                    f"the frame is {w}x{h} pixels: too small to hold a face of {smallest} px, "
                    "the smallest the door looks for"
                )
            elif not seen:
                s.out.reason = f"no face in {len(s.frames)} frame(s)"
            else:
                s.out.reason = f"{seen} face(s) seen, none in door {s.out.door!r}'s region"

    def _gate(self, s: "_State") -> None:
        frames, out = s.frames, s.out
        s.qualities = [measure_quality(frames[i], f) for i, f in s.faces]
        issues = [self.quality_issue(q) for q in s.qualities]
        good = [j for j, issue in enumerate(issues) if issue is None]
        s.best = max(good or range(len(s.faces)), key=lambda j: s.qualities[j].face_px)
        index, face = s.faces[s.best]
        out.quality, out.frame_index = s.qualities[s.best], index
        out.stages.append(
            StageResult("quality", not issues[s.best], detail=issues[s.best] or "passed")
        )
        s.crops = [self.pipeline.align(frames[i], f) for i, f in s.faces]
        out.face_crop = s.crops[s.best]
        if issues[s.best]:
            s.done = True
            out.decision = "poor_quality"
            out.reason = f"the face is {issues[s.best].replace('_', ' ')}; " + _QUALITY_HINT
            return
        s.crop_64 = self.pipeline.align(frames[index], face, 64)
        s.good = good
        s.good_64 = np.stack(
            [
                s.crop_64
                if j == s.best
                else self.pipeline.align(frames[s.faces[j][0]], s.faces[j][1], 64)
                for j in good
            ]
        )

    def _head_turn(self, s: "_State") -> None:
        if not (len(s.frames) >= 3 or (s.info is not None and s.info.require_liveness)):
            return
        s.out.head_turn = head_turn(
            [s.qualities[j].yaw_deg for j in range(len(s.faces))],
            s.vectors,
            s.vectors[s.best],
            self.settings.liveness_min_yaw_change_deg,
            self._same_person_distance(),
        )
        s.out.stages.append(
            StageResult(
                "head_turn",
                s.out.head_turn.passed,
                s.out.head_turn.yaw_range_deg,
                self.settings.liveness_min_yaw_change_deg,
                s.out.head_turn.reason,
            )
        )

    def _conclude(
        self, out: AccessDecision, info, spoof: str | None, when: datetime | None
    ) -> None:
        table = out.levels
        threshold = table.threshold(out.required_level)
        if not out.candidates:
            out.stages.append(StageResult("match", False, None, threshold, "nobody is enrolled"))
            out.reason = "nobody is enrolled"
            return
        best = out.candidates[0]
        out.probability, out.level = best.probability, best.level
        runner_up = out.candidates[1].fused if len(out.candidates) > 1 else None
        margin = best.fused - runner_up if runner_up is not None else float("inf")
        matched = best.fused >= threshold
        out.stages.append(
            StageResult(
                "match", matched, best.fused, threshold, f"level {best.level} of 10 (fused score)"
            )
        )
        if not matched:
            out.reason = (
                f"the nearest enrolled person reaches level {best.level}; the door requires "
                f"{out.required_level}: not anyone enrolled"
            )
            return
        out.stages.append(
            StageResult(
                "margin",
                margin >= self.settings.decision_margin,
                None if runner_up is None else margin,
                self.settings.decision_margin,
                "lead over the runner-up",
            )
        )
        if margin < self.settings.decision_margin:
            out.reason = (
                f"ambiguous: {best.display_name} leads {out.candidates[1].display_name} by "
                f"{margin:.2f}, the margin is {self.settings.decision_margin:.2f}"
            )
            return
        out.person_id, out.display_name = best.person_id, best.display_name
        if spoof is not None:
            out.decision = "spoof_suspected"
            out.reason = f"matches {best.display_name}, but {spoof}"
            return
        if info is not None and info.require_liveness and not out.head_turn.passed:
            out.decision = "spoof_suspected"
            out.reason = f"matches {best.display_name}, but {out.head_turn.reason}"
            return
        if info is not None and not self.store.authorized(best.person_id, info.id, when):
            out.decision = "not_authorized"
            out.reason = f"{best.display_name} has no access to door {info.name!r} at this time"
            return
        out.decision = "grant"
        out.reason = (
            f"{best.display_name} at level {best.level} (door requires {out.required_level}), "
            f"P = {best.probability:.4f}"
        )

    def _record(self, out: AccessDecision, frames: Sequence[np.ndarray]) -> int:
        return self.store.record_event(
            out.decision,
            out.door_id,
            out.person_id,
            out.probability,
            out.level,
            build_report(out),
            out.latency_ms,
            self._query_image(frames, out),
            webhook_body=out.event if out.door is not None else None,
        )

    def _query_image(self, frames: Sequence[np.ndarray], out: AccessDecision) -> bytes | None:
        if not self.settings.store_query_images:
            return None
        frame = frames[out.frame_index if out.frame_index is not None else 0]
        side = max(frame.shape[:2])
        if side > QUERY_IMAGE_MAX_SIDE_PX:  # a bounded copy, never the upload as sent
            scale = QUERY_IMAGE_MAX_SIDE_PX / side
            size = (max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale)))
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        ok, jpeg = cv2.imencode(
            ".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
        )
        return jpeg.tobytes() if ok else None


_QUALITY_HINT = "ask the person to face the camera in good light, closer, and hold still"


@dataclass(frozen=True)
class Checks:
    """What a matched face must pass: P(live) from the general discriminator at least
    general_threshold and, when calibrated, the synthetic-face check's score at least
    synthetic_threshold."""

    general_threshold: float
    general_detail: str
    synthetic: SyntheticCheck | None = None
    synthetic_threshold: float | None = None


@dataclass
class Query:
    """One door query: RGB frames (one, or a burst), the door's name, the time it is for."""

    frames: list[np.ndarray]
    door: str | None = None
    when: datetime | None = None


@dataclass
class _State:
    """A query on its way through identify_many's batched stages."""

    frames: list[np.ndarray]
    info: object  # the door's DoorInfo, or None
    when: datetime | None
    out: AccessDecision | None
    error: Exception | None = None  # what stopped this query alone
    done: bool = False  # decided before the last stage (no face, poor quality)
    laps: dict[str, float] | None = None  # the stages it went through, when done early
    total_ms: float = 0.0
    faces: list[tuple[int, DetectedFace]] = field(default_factory=list)
    qualities: list[FaceQuality] = field(default_factory=list)
    best: int = 0
    crops: list[np.ndarray] = field(default_factory=list)
    crop_64: np.ndarray | None = None
    live: float = 0.0
    good: list[int] = field(default_factory=list)  # faces (indices) that passed the gate
    good_64: np.ndarray | None = None  # their 64 px crops
    synthetic_frames: list[float] | None = None  # the check's score of each, when calibrated
    synthetic: float | None = None  # the synthetic-face check's score of the query
    vectors: np.ndarray | None = None
    shortlist: list[Candidate] = field(default_factory=list)


def _at_least(stage: str, score: float, threshold: float, detail: str) -> StageResult:
    """A check that passes when its score reaches the threshold."""
    return StageResult(stage, score >= threshold, score, threshold, detail)


class _Clock:
    def __init__(self):
        self.start = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round((now - self.last) * 1000, 2)
        self.last = now

    def total(self) -> float:
        return round((time.perf_counter() - self.start) * 1000, 2)
