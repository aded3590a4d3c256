"""The run's outputs: results.json (every number), det.png and adversarial.png, and summary.md
(the tables the README carries)."""

import json
from pathlib import Path

import numpy as np

from evaluate.adversarial import SYSTEMS_ATTACKED as WHITE_BOX
from evaluate.harness import (
    FMR_TARGETS,
    FPIR_TARGETS,
    OPERATING_FMR,
    SYSTEM_NAMES,
    SYSTEMS,
    EvalConfig,
    Evaluation,
    Say,
)
from facegate.settings import Settings


def run_evaluation(config: EvalConfig, settings: Settings, out: Path, say: Say = print) -> dict:
    results = Evaluation(config, settings, say).run()
    write_outputs(results, out)
    return results


def write_outputs(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=_plain))
    _plots(results, out)
    (out / "summary.md").write_text(markdown(results))


def _plain(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _rate(point: dict) -> str:
    if point["rate"] is None:
        return "-"
    low, high = point["ci95"]
    text = f"{point['rate']:.3f} [{low:.3f}, {high:.3f}]"
    return text if point["measurable"] else f"{text} *"


def markdown(r: dict) -> str:
    v, o, pa, adv = r["verification"], r["open_set"], r["presentation_attacks"], r["adversarial"]
    d = r["data"]
    lines = [
        "### Evaluation: four systems on the same faces",
        "",
        f"Enrolled: {len(d['enrolled'])} identities ({', '.join(d['enrolled'])}), glint "
        f"identities from {d['enroll_photos']} photos each. Probes: {d['mated_probes']} mated, "
        f"{d['non_mated_probes']} never enrolled ({d['glint_identities_never_enrolled']} glint "
        f"identities, {d['celeba_identities']} celeba_wild identities). Training: "
        + ", ".join(f"{k} {val}" for k, val in r["settings"].items())
        + f". Run time {r['seconds']['total']:.0f} s.",
        "",
        "Verification (1:1), FNMR at FMR with Wilson 95% intervals; * = fewer impostor "
        "comparisons than the rule of three needs for that FMR (the value is indicative only):",
        "",
        "| system | genuine | impostor | "
        + " | ".join(f"FNMR @ FMR {t:g}" for t in FMR_TARGETS)
        + " | rank-1 | "
        + " | ".join(f"FNIR @ FPIR {t:g}" for t in FPIR_TARGETS)
        + " |",
        "| --- | --- | --- | "
        + " | ".join("---" for _ in FMR_TARGETS)
        + " | --- | "
        + " | ".join("---" for _ in FPIR_TARGETS)
        + " |",
    ]
    for s in SYSTEMS:
        lines.append(
            f"| {SYSTEM_NAMES[s]} | {v[s]['genuine']} | {v[s]['impostor']} | "
            + " | ".join(_rate(v[s]["fnmr_at_fmr"][str(t)]) for t in FMR_TARGETS)
            + f" | {o[s]['rank1']:.3f} | "
            + " | ".join(_rate(o[s]["fnir_at_fpir"][str(t)]) for t in FPIR_TARGETS)
            + " |"
        )
    kinds = list(pa["iapmr"])
    lines += [
        "",
        f"Presentation attacks: IAPMR (attacks accepted as their target person at each system's "
        f"FMR = {OPERATING_FMR:g} threshold), with the attack presentations per type; a "
        "presentation the door's quality gate refuses is accepted by no system ("
        + (
            ", ".join(f"{k}: {n} refused" for k, n in pa.get("refused_at_capture", {}).items())
            or "none refused"
        )
        + "):",
        "",
        "| system | " + " | ".join(f"{k} ({pa['presentations'][k]})" for k in kinds) + " |",
        "| --- | " + " | ".join("---" for _ in kinds) + " |",
    ]
    for s in SYSTEMS:
        lines.append(
            f"| {SYSTEM_NAMES[s]} | " + " | ".join(f"{pa['iapmr'][k][s]:.3f}" for k in kinds) + " |"
        )
    pad = pa["pad_general_discriminator"]
    lines += [
        "",
        "The presentation-attack checks as a PAD subsystem (ISO/IEC 30107-3; the general "
        "discriminator and the synthetic-face check, each fold's thresholds read off the other "
        f"half's never-enrolled faces): BPCER {pad['bpcer']:.3f} of {pad['bona_fide']} enrolled "
        f"persons' probes, {pad['bpcer_unseen_cameras']['rate']:.3f} of "
        f"{pad['bpcer_unseen_cameras']['bona_fide']} never-enrolled faces; APCER "
        + ", ".join(f"{k} {x['apcer']:.3f} ({x['presentations']})" for k, x in pad["apcer"].items())
        + f"; worst type {pad['apcer_max']:.3f}"
        + "".join(
            f"; {k} with the door's quality gate in front {x['apcer']:.3f}"
            for k, x in pad.get("apcer_with_quality_gate", {}).items()
        )
        + ". Thresholds per fold: "
        + "; ".join(
            f"P(live) >= {g['general_threshold']:.3g}, synthetic-face check >= "
            f"{g['synthetic_threshold']:.3g}"
            for g in pad["gates"]
        )
        + ". The synthetic-face check fitted without one person's crops and generator (each "
        f"person in turn, as for a person enrolled after the last calibration) passes "
        f"{pad['gan_samples_unseen_generator']['apcer']:.3f} of that person's "
        f"{pad['gan_samples_unseen_generator']['presentations']} GAN samples.",
        "",
        f"Adversarial (L-inf, white-box; {adv['probes']} never-enrolled faces aimed at their "
        f"nearest enrolled person; PGD {adv['pgd_steps']} steps): share that reaches the FMR = "
        f"{OPERATING_FMR:g} threshold. {adv['note']}.",
        "",
        "| epsilon | "
        + " | ".join(f"FGSM {s}" for s in WHITE_BOX)
        + " | "
        + " | ".join(f"PGD {s}" for s in WHITE_BOX)
        + " |",
        "| --- | " + " | ".join("---" for _ in range(2 * len(WHITE_BOX))) + " |",
    ]
    clean = adv["clean_success"]
    clean_cells = " | ".join(f"{clean[s]:.3f}" for s in WHITE_BOX)
    lines.append(f"| 0 (clean) | {clean_cells} | {clean_cells} |")
    for row in adv["by_budget"]:
        lines.append(
            f"| {row['epsilon_255']:g}/255 | "
            + " | ".join(f"{row[f'fgsm_{s}']:.3f}" for s in WHITE_BOX)
            + " | "
            + " | ".join(f"{row[f'pgd_{s}']:.3f}" for s in WHITE_BOX)
            + " |"
        )
    lines += ["", "Fusion weights (per cross-validation fold; 0: the term was dropped):", ""]
    for s, folds in r.get("fusion", {}).items():
        for i, fusion in enumerate(folds):
            weights = ", ".join(
                f"{t} {w / sc:.3g}"
                for t, w, sc in zip(
                    fusion["terms"], fusion["weights"], fusion["scale"], strict=True
                )
            )
            dropped = "; ".join(fusion["dropped"]) or "none dropped"
            lines.append(f"- ({s}) fold {i}: {weights}; bias {fusion['bias']:.3g} ({dropped})")
    f = r["failure_rates"]
    lines += [
        "",
        f"Failure to enrol: {f['fte']['failures']} of {f['fte']['attempts']}"
        + (f" ({'; '.join(f['fte_reasons'])})" if f["fte_reasons"] else "")
        + f". Failure to acquire (no face found, or the face refused by the door's quality "
        f"gate: {f.get('fta_poor_quality') or 'none'}): {f['fta']['failures']} of "
        f"{f['fta']['attempts']} images ({f['fta']['rate']:.3f}).",
        "",
        f"Demographic breakdown: {r['demographics']}.",
    ]
    return "\n".join(lines) + "\n"


def _plots(r: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    for s in SYSTEMS:
        det = r["verification"][s]["det"]
        fmr, fnmr = np.array(det["fmr"]), np.array(det["fnmr"])
        keep = (fmr > 0) & (fnmr > 0)
        ax.loglog(fmr[keep], fnmr[keep], label=SYSTEM_NAMES[s])
    ax.set_xlabel("false match rate")
    ax.set_ylabel("false non-match rate")
    ax.set_title("DET, verification")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "det.png", dpi=100)
    plt.close(fig)

    adv = r["adversarial"]
    fig, ax = plt.subplots(figsize=(6, 4))
    budgets = [0] + [row["epsilon_255"] for row in adv["by_budget"]]
    for s in WHITE_BOX:
        ys = [adv["clean_success"][s]] + [row[f"pgd_{s}"] for row in adv["by_budget"]]
        ax.plot(budgets, ys, marker="o", label=f"PGD {SYSTEM_NAMES[s]}")
    ax.set_xlabel("L-inf budget (x/255)")
    ax.set_ylabel("impostors accepted")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "adversarial.png", dpi=100)
    plt.close(fig)
