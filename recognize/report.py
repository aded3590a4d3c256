"""The scored confidence report of one access decision: JSON with a versioned, documented schema
(`report_schema()`), and a one-page HTML rendering for a security officer. Saved with the event."""

import base64
import html
from typing import Literal

import cv2
from pydantic import BaseModel, Field

from recognize.decision import DECISIONS, AccessDecision

SCHEMA_VERSION = "1.2"  # 1.1: the fusion (terms, weights, contributions), calibration notes;
# 1.2: a candidate's `unavailable` (its stored personal discriminator could not be used)
Decision = Literal[
    "grant", "unknown", "spoof_suspected", "no_face", "poor_quality", "not_authorized"
]
assert set(Decision.__args__) == set(DECISIONS)


class Stage(BaseModel):
    name: str = Field(
        description="detect, quality, authenticity, synthetic, head_turn, match or margin"
    )
    passed: bool | None = Field(description="None: the stage decided nothing")
    score: float | None = None
    threshold: float | None = None
    detail: str = ""


class Candidate(BaseModel):
    person_id: int
    display_name: str
    distance: float = Field(description="Embedding distance to the person's nearest sample")
    embedding_logit: float = Field(description="Log-likelihood ratio from the distance")
    personal_logit: float | None = Field(
        description="The personal discriminator's calibrated logit; None without one"
    )
    fused: float = Field(
        description="The fused log-likelihood ratio: the learned fusion's sum of contributions "
        "when the level table holds one, else embedding_logit + personal_logit"
    )
    probability: float = Field(description="sigmoid(fused): P(this person), equal priors")
    level: int = Field(ge=0, le=10, description="Highest security level passed (0: none)")
    contributions: dict[str, float] | None = Field(
        None, description="Each fusion term's share of `fused` (and the bias); None: no fusion"
    )
    unavailable: str | None = Field(
        None,
        description="Why the person's personal discriminator was not used although stored "
        "(missing or damaged file); the candidate was scored without it",
    )


class LevelRow(BaseModel):
    level: int = Field(ge=1, le=10)
    target_fmr: float
    threshold: float = Field(description="Smallest fused score passing the level")
    probability: float = Field(description="sigmoid(threshold)")
    estimated_fmr: float = Field(description="Share of calibration impostor trials passing")
    basis: Literal["measured", "extrapolated"]


class FusionTerm(BaseModel):
    term: str
    weight: float = Field(description="Per unit of the term (0: dropped, it added nothing)")


class Levels(BaseModel):
    rows: list[LevelRow]
    source: str
    impostor_trials: int
    embedding_platt: tuple[float, float]
    fusion: list[FusionTerm] | None = Field(
        None, description="The learned fusion's terms and weights; None: the sum of the two LLRs"
    )
    fusion_dropped: list[str] = Field(default_factory=list, description="Terms set to 0, and why")
    notes: list[str] = Field(default_factory=list, description="What calibration decided")


class AccessReport(BaseModel):
    """One door decision, explained. Biometric fields (face_crop_png, candidates) are erased
    when the person is deleted."""

    schema_version: Literal["1.2"] = SCHEMA_VERSION
    created_at: str = Field(description="ISO 8601, UTC")
    door: str | None
    required_level: int = Field(ge=1, le=10)
    decision: Decision
    reason: str
    person_id: int | None
    display_name: str | None
    probability: float | None = Field(description="The best candidate's fused probability")
    level: int | None = Field(description="The best candidate's level (0-10)")
    frames: int
    frame_index: int | None = Field(description="The frame the decision was made on")
    stages: list[Stage]
    candidates: list[Candidate]
    quality: dict[str, float] | None
    head_turn: dict | None
    latency_ms: dict[str, float]
    levels: Levels | None
    face_crop_png: str | None = Field(description="The aligned face, PNG, base64")


def report_schema() -> dict:
    """The JSON schema every saved report validates against."""
    schema = AccessReport.model_json_schema()
    schema["$id"] = f"https://facegate.local/schemas/access-report/{SCHEMA_VERSION}"
    return schema


def _png_b64(crop) -> str | None:
    if crop is None:
        return None
    ok, png = cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    return base64.b64encode(png.tobytes()).decode() if ok else None


def build_report(d: AccessDecision) -> dict:
    levels = None
    if d.levels is not None:
        fusion = d.levels.fused_model()
        levels = Levels(
            rows=[LevelRow(**r) for r in d.levels.rows()],
            source=d.levels.source,
            impostor_trials=d.levels.impostor_trials,
            embedding_platt=d.levels.embedding_platt,
            fusion=[
                FusionTerm(term=t, weight=w / sc)
                for t, w, sc in zip(fusion.terms, fusion.weights, fusion.scale, strict=True)
            ]
            if fusion
            else None,
            fusion_dropped=fusion.dropped if fusion else [],
            notes=d.levels.notes,
        )
    report = AccessReport(
        created_at=d.created_at.isoformat(),
        door=d.door,
        required_level=d.required_level,
        decision=d.decision,
        reason=d.reason,
        person_id=d.person_id,
        display_name=d.display_name,
        probability=d.probability,
        level=d.level,
        frames=d.frames,
        frame_index=d.frame_index,
        stages=[Stage(**vars(s)) for s in d.stages],
        candidates=[Candidate(**vars(c)) for c in d.candidates],
        quality=d.quality.as_dict() if d.quality else None,
        head_turn=vars(d.head_turn) if d.head_turn else None,
        latency_ms=d.latency_ms,
        levels=levels,
        face_crop_png=_png_b64(d.face_crop),
    )
    return report.model_dump(mode="json")


_COLOURS = {"grant": "#1b7f3b", "not_authorized": "#b26b00", "spoof_suspected": "#b00020"}


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def render_html(report: dict) -> str:
    """The one-page rendering of a report (as build_report returns it)."""
    r = AccessReport.model_validate(report)
    colour = _COLOURS.get(r.decision, "#444")
    crop = (
        f'<img src="data:image/png;base64,{r.face_crop_png}" width="150" height="150" alt="face">'
        if r.face_crop_png
        else "<div class='noface'>no face</div>"
    )
    stages = "".join(
        f"<tr><td>{_fmt(s.name)}</td><td>{_fmt(s.score)}</td><td>{_fmt(s.threshold)}</td>"
        f"<td>{'-' if s.passed is None else ('pass' if s.passed else 'FAIL')}</td>"
        f"<td>{_fmt(s.detail)}</td></tr>"
        for s in r.stages
    )
    candidates = "".join(
        f"<tr><td>{_fmt(c.display_name)} (#{c.person_id})</td><td>{c.distance:.3f}</td>"
        f"<td>{_fmt(c.personal_logit if c.unavailable is None else c.unavailable)}</td>"
        f"<td>{c.fused:.2f}</td><td>{c.level}</td>"
        f"<td><div class='bar'><span style='width:{100 * c.probability:.1f}%'></span></div>"
        f"{c.probability:.4f}</td></tr>"
        for c in r.candidates
    )
    quality = "".join(
        f"<tr><td>{_fmt(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in (r.quality or {}).items()
    )
    latency = "".join(
        f"<tr><td>{_fmt(k)}</td><td>{v:.1f} ms</td></tr>" for k, v in r.latency_ms.items()
    )
    levels = ""
    if r.levels:
        levels = "".join(
            f"<tr{' class=req' if row.level == r.required_level else ''}><td>{row.level}</td>"
            f"<td>{row.target_fmr:.0e}</td><td>{row.threshold:.2f}</td>"
            f"<td>{row.estimated_fmr:.2e}</td><td>{row.basis}</td></tr>"
            for row in r.levels.rows
        )
        levels = (
            f"<h2>Security levels</h2><p class=small>{_fmt(r.levels.source)}; "
            f"{r.levels.impostor_trials} impostor trials</p><table><tr><th>level</th>"
            f"<th>target FMR</th><th>threshold</th><th>measured FMR</th><th>basis</th></tr>"
            f"{levels}</table>"
        )
    who = f"{_fmt(r.display_name)} (#{r.person_id})" if r.person_id is not None else "-"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>facegate access report</title>
<style>
body {{ font-family: sans-serif; margin: 24px; max-width: 900px; color: #222 }}
.banner {{ background: {colour}; color: white; padding: 12px 16px; font-size: 22px }}
.top {{ display: flex; gap: 24px; margin: 16px 0 }}
table {{ border-collapse: collapse; margin-bottom: 16px; font-size: 13px }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left }}
.bar {{ display: inline-block; width: 120px; height: 10px; background: #eee; margin-right: 6px }}
.bar span {{ display: block; height: 10px; background: {colour} }}
.req {{ font-weight: bold; background: #fff6d5 }}
.small {{ font-size: 12px; color: #555 }}
.noface {{ width: 150px; height: 150px; background: #eee }}
</style></head><body>
<div class="banner">{_fmt(r.decision).upper().replace("_", " ")} &middot; door {_fmt(r.door)}</div>
<div class="top">{crop}<div>
<p><b>{_fmt(r.reason)}</b></p>
<p>Person: {who}<br>Probability: {_fmt(r.probability)}<br>
Level: {_fmt(r.level)} of 10 (door requires {r.required_level})<br>
Frames: {r.frames}, decided on frame {_fmt(r.frame_index)}<br>
<span class=small>{_fmt(r.created_at)} &middot; report schema {r.schema_version}</span></p>
</div></div>
<h2>Stages</h2><table><tr><th>stage</th><th>score</th><th>threshold</th><th>result</th>
<th>detail</th></tr>{stages}</table>
<h2>Candidates</h2><table><tr><th>person</th><th>distance</th><th>personal logit</th>
<th>fused</th><th>level</th><th>probability</th></tr>{candidates}</table>
<h2>Quality</h2><table>{quality}</table>
<h2>Latency</h2><table>{latency}</table>
{levels}
</body></html>
"""
