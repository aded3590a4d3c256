"""Plain-text renderings of enrollment summaries and door reports for the terminal, and the
enrollment report's HTML page."""

import html
from pathlib import Path


def format_enrollment(summary: dict, frames: list | None = None) -> str:
    """The enrollment summary as a few lines for a terminal."""
    cov = summary["pose_coverage"]
    sel = summary["selected_pose_coverage"]
    lines = [
        f"enrolled {summary['name']!r}"
        + (f" as person {summary['person_id']}" if summary.get("person_id") else "")
        + f" from {summary['source_kind']} {summary['source']}",
        (
            f"  read {summary['frames_read']} photos"
            if summary["source_kind"] == "photos"
            else f"  read {summary['frames_read']} frames ({summary['duration_s']} s), sampled {summary['frames_sampled']}"
        )
        + f", kept {summary['faces_kept']} good faces, selected {summary['faces_selected']}",
        f"  pose coverage (good faces): left {cov['left']}, frontal {cov['frontal']}, right {cov['right']}"
        f"; selected: left {sel['left']}, frontal {sel['frontal']}, right {sel['right']}"
        f"; yaw {summary['yaw_range_deg'][0]} to {summary['yaw_range_deg'][1]} deg",
        "  dropped: " + (", ".join(f"{n} {k}" for k, n in summary["dropped"].items()) or "none"),
        f"  embedder: {summary['embedder_version']}",
    ]
    lines += [f"  warning: {w}" for w in summary["warnings"]]
    if "models" in summary:
        m = summary["models"]
        smp, pd, gd, sec = (
            m["samples"],
            m["personal_discriminator"],
            m["general_discriminator"],
            m["seconds"],
        )
        lines += [
            f"  personal GAN: {m['gan_steps']} steps; {smp['samples']} samples, "
            f"{smp['identity_rate']:.0%} verify as the person ({m['synthetic_kept']} kept), "
            f"diversity {smp['diversity']} (real {smp['real_diversity']})"
            + ("; MODE COLLAPSE" if smp["collapsed"] else ""),
            f"  personal discriminator: held-out AUC {pd['auc']}, EER {pd['eer']} "
            f"({pd['held_out_positives']} own frames vs {pd['held_out_negatives']} other faces), "
            f"{m['discriminator_bytes'] / 1e6:.2f} MB",
            f"  general discriminator ({'updated' if gd['incremental'] else 'first trained'}, "
            f"{gd['steps']} steps): held-out AUC {gd['auc_generated']} against generated samples, "
            "against simulated attacks "
            + ", ".join(f"{k} {v}" for k, v in gd["auc_attacks"].items()),
            "  training took " + ", ".join(f"{k} {v} s" for k, v in sec.items()),
        ]
    lines += [f"  not built yet: {p}" for p in summary.get("pending", [])]
    if frames:
        lines.append(
            "  frame   time_s faces   prob  size_px  sharp  bright  yaw_deg  pose     result"
        )
        for r in frames:
            q = r.quality
            figures = (
                f"{q.detection_prob:6.3f} {q.face_px:8.0f} {q.sharpness:6.0f} {q.brightness:7.0f} {q.yaw_deg:8.1f}"
                if q
                else f"{'-':>6} {'-':>8} {'-':>6} {'-':>7} {'-':>8}"
            )
            verdict = "selected" if r.selected else (r.drop_reason or "kept")
            lines.append(
                f"  {r.frame_index:5d} {r.time_s:8.2f} {r.faces_found:5d} {figures}  {r.pose_bin or '-':8} {verdict}"
            )
    return "\n".join(lines)


def format_decision(report: dict, event_id: int | None, html_path=None) -> str:
    """A door decision (its JSON report) as a few lines for a terminal."""
    who = f" {report['display_name']} (person {report['person_id']})" if report["person_id"] else ""
    lines = [
        f"{report['decision'].upper()}{who}"
        + (f" at door {report['door']!r}" if report["door"] else ""),
        f"  {report['reason']}",
    ]
    if report["level"] is not None:
        lines.append(
            f"  probability {report['probability']:.4f}, level {report['level']} of 10 "
            f"(required {report['required_level']})"
        )
    for s in report["stages"]:
        result = "-" if s["passed"] is None else ("pass" if s["passed"] else "FAIL")
        score = "" if s["score"] is None else f" {s['score']:.3f}"
        limit = "" if s["threshold"] is None else f" (threshold {s['threshold']:.3f})"
        lines.append(f"  {s['name']:<24} {result}{score}{limit} {s['detail']}")
    for c in report["candidates"][:5]:
        lines.append(
            f"  candidate {c['display_name']} (#{c['person_id']}): distance {c['distance']:.3f}, "
            f"P {c['probability']:.4f}, level {c['level']}"
        )
    latency = ", ".join(f"{k} {v:.0f}" for k, v in report["latency_ms"].items())
    lines.append(f"  latency ms: {latency}")
    if event_id is not None:
        lines.append(f"  access event {event_id}")
    if html_path is not None:
        lines.append(f"  report: {html_path}")
    return "\n".join(lines)


# what `facegate eval` writes and the console shows (GET /v1/evaluation), under eval_dir
EVAL_FILES = ("summary.md", "results.json", "det.png", "adversarial.png")


def eval_dir(settings) -> Path:
    """Where the last `facegate eval` is kept for the console: <data dir>/eval."""
    return Path(settings.data_dir) / "eval"


def format_levels(rows: list[dict], source: str, trials: int) -> str:
    """The security-level table."""
    lines = [f"security levels from {trials} impostor trials ({source})"]
    lines += [
        f"  level {r['level']:>2}: target FMR {r['target_fmr']:.0e}, fused >= {r['threshold']:.3f}, "
        f"measured FMR {r['estimated_fmr']:.2e} ({r['basis']})"
        for r in rows
    ]
    return "\n".join(lines)


FRAME_COLUMNS = (
    "frame_index", "time_s", "faces_found", "detection_prob", "face_px", "sharpness",
    "brightness", "yaw_deg", "pose_bin", "drop_reason", "selected",
)  # fmt: skip


def enrollment_html(report: dict, samples_url: str) -> str:
    """One page: the summary lines, the GAN sample grid and the per-frame quality table."""
    summary = {**report["enrollment"], "person_id": report["person_id"], "models": report["models"]}
    rows = []
    for frame in report.get("frames", []):
        cells = []
        for column in FRAME_COLUMNS:
            value = frame.get(column)
            text = f"{value:.2f}" if isinstance(value, float) else ("" if value is None else value)
            cells.append(f"<td>{html.escape(str(text))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f"<th>{c}</th>" for c in FRAME_COLUMNS)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>facegate enrollment</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;font-size:13px}"
        "tr:nth-child(even){background:#f3f3f3}pre{background:#f7f7f7;padding:1em}</style>"
        f"</head><body><h1>Enrollment of {html.escape(summary['name'])}</h1>"
        f"<pre>{html.escape(format_enrollment(summary))}</pre>"
        f"<h2>Personal GAN samples</h2><img src='{html.escape(samples_url)}' "
        "alt='samples of the person synthesized by their GAN'>"
        f"<h2>Frames</h2><table><tr>{head}</tr>{''.join(rows)}</table></body></html>"
    )
