"""Plain-text renderings of enrollment summaries and door reports for the terminal."""

# What later issues add behind this command line; the CLI says so instead of pretending.
PENDING = {
    "recognizer": "the recognizer that runs the general and personal discriminators: calibrated probability and 1-10 report (issue 5)",
    "api": "the door-access HTTP service (issue 6)",
}


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


def format_report(report: dict) -> str:
    lines = [
        f"door query: {report['query']}",
        f"  decision: {report['decision']}"
        + (f" ({report['person']})" if report.get("person") else "")
        + " (provisional: embedding distance only)",
    ]
    if "quality" in report:
        q = report["quality"]
        lines.append(
            f"  quality: prob {q['detection_prob']:.3f}, size {q['face_px']:.0f} px, sharpness {q['sharpness']:.0f}, "
            f"brightness {q['brightness']:.0f}, yaw {q['yaw_deg']:+.1f} deg"
            + (f"; fails: {report['quality_issue']}" if report.get("quality_issue") else "")
        )
        lines.append(
            f"  shortlist (provisional match at nearest-sample distance <= {report['match_max_distance']}):"
        )
        for c in report["candidates"] or [
            {
                "display_name": "(nobody enrolled)",
                "nearest_distance": float("nan"),
                "template_similarity": float("nan"),
            }
        ]:
            lines.append(
                f"    {c['display_name']:<32} distance {c['nearest_distance']:.3f}  template cosine {c['template_similarity']:.3f}"
            )
    lines.append(
        "  latency: " + ", ".join(f"{k[:-3]} {v} ms" for k, v in report["latency_ms"].items())
    )
    return "\n".join(lines)
