"""Adversarial attacks (L-infinity) that try to pass an impostor's face as the enrolled person it
is nearest to.

White-box FGSM and PGD on the discriminators: the 64 px crop they see is perturbed; (b) and (c)
through their personal discriminator, (d) through the personal and the general discriminator
together (both must pass). dlib's embedding runs outside torch, so the white-box attacks leave the
impostor's embedding term as it was.

(a) uses only that embedding, so it is attacked black-box instead: SPSA (antithetic random sign
directions, a few queries per step) on the embedder's own 150 px crop, descending the distance to
the target's nearest sample. Its query budget is small (dlib takes tens of milliseconds per crop on
a CPU), so its rate is a lower bound on what an attacker with more queries achieves."""

import numpy as np
import torch

from gan.train import to_tensor
from recognize import face_distance
from recognize.levels import embedding_logit

SYSTEMS_ATTACKED = ("b", "c", "d")


def _attack(
    models: list, x: torch.Tensor, epsilon: float, steps: int, start: torch.Tensor | None = None
) -> torch.Tensor:
    """Maximise the sum of the models' logits within an L-inf ball of `epsilon` (pixel scale
    0-1; tensors are in [-1, 1], so the ball is 2*epsilon wide there). steps=1 is FGSM."""
    radius = 2 * epsilon
    step = radius if steps == 1 else 2.5 * radius / steps
    adv = x.clone() if start is None else start.clone()
    for _ in range(steps):
        adv.requires_grad_(True)
        objective = sum(m(adv).sum() for m in models)
        (grad,) = torch.autograd.grad(objective, adv)
        with torch.no_grad():
            adv = adv + step * grad.sign()
            adv = torch.clamp(torch.min(torch.max(adv, x - radius), x + radius), -1, 1)
    return adv.detach()


def adversarial(evaluation, probes, thresholds: dict) -> dict:
    """Success rate against the budget: the share of never-enrolled faces that, perturbed, reach
    the system's FMR = 1e-3 threshold as their nearest enrolled person."""
    cfg = evaluation.config
    strangers = np.flatnonzero(probes.owner < 0)
    rng = np.random.default_rng(cfg.seed)
    chosen = rng.choice(strangers, size=min(cfg.adversarial_probes, len(strangers)), replace=False)
    emb = evaluation.embedding_logits(probes.embeddings[chosen])
    target = emb.argmax(1)  # the attacker aims at the person they already look most like
    emb_target = emb[np.arange(len(chosen)), target]
    x = to_tensor(probes.crops[chosen])
    general = evaluation.general
    minimum = evaluation.settings.authenticity_min_probability
    for p in evaluation.persons:
        for m in p.models.values():
            m.requires_grad_(False)
    general.requires_grad_(False)

    def passes(system: str, adv: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            ok = np.zeros(len(chosen), bool)
            for i, t in enumerate(target):
                model = evaluation.persons[t].models["c" if system == "d" else system]
                fused = emb_target[i] + float(model(adv[i : i + 1]))
                ok[i] = fused >= thresholds[system]
                if system == "d":
                    ok[i] &= float(torch.sigmoid(general(adv[i : i + 1]))) >= minimum
            return ok

    clean = {s: float(passes(s, x).mean()) for s in SYSTEMS_ATTACKED}
    clean["a"] = float((emb_target >= thresholds["a"]).mean())
    offset = len(probes.owner) - len(evaluation.stranger_crops)  # strangers are the last rows
    black = chosen[: cfg.black_box_probes]
    black_crops = evaluation.stranger_crops[black - offset]
    rows = []
    for epsilon in cfg.budgets:
        row = {"epsilon": epsilon, "epsilon_255": round(epsilon * 255, 2)}
        for method, steps in (("fgsm", 1), ("pgd", cfg.pgd_steps)):
            for system in SYSTEMS_ATTACKED:
                adv = torch.empty_like(x)
                for i, t in enumerate(target):
                    person = evaluation.persons[t]
                    models = [person.models["c" if system == "d" else system]]
                    if system == "d":
                        models.append(general)
                    adv[i : i + 1] = _attack(models, x[i : i + 1], epsilon, steps)
                row[f"{method}_{system}"] = float(passes(system, adv).mean())
        row["spsa_a"] = spsa_success(
            evaluation, black_crops, target[: len(black)], epsilon, thresholds["a"], rng
        )
        rows.append(row)
    return {
        "probes": int(len(chosen)),
        "pgd_steps": cfg.pgd_steps,
        "black_box_probes": int(len(black)),
        "spsa_queries_per_face": cfg.spsa_steps * 2 * cfg.spsa_pairs + 1,
        "clean_success": clean,
        "by_budget": rows,
        "note": (
            "(a) is attacked black-box (SPSA on the embedder's crop, "
            f"{cfg.spsa_steps} steps of {2 * cfg.spsa_pairs} queries); (b)-(d) white-box"
        ),
    }


def spsa_success(evaluation, crops: np.ndarray, targets, epsilon: float, threshold, rng) -> float:
    """The share of `crops` (uint8, the embedder's input) that SPSA within `epsilon` moves to an
    embedding-only score at or above `threshold` for their target person."""
    cfg = evaluation.config
    embed = evaluation.pipeline.embed
    passed = 0
    for crop, t in zip(crops, targets, strict=True):
        samples = evaluation.persons[t].embeddings
        x0 = crop.astype(np.float32) / 255
        x = x0.copy()

        def distance(batch: np.ndarray, samples=samples) -> np.ndarray:
            pixels = np.clip(np.rint(batch * 255), 0, 255).astype(np.uint8)
            return face_distance(embed(list(pixels)), samples).min(1)

        for _ in range(cfg.spsa_steps):
            u = rng.choice([-1.0, 1.0], size=(cfg.spsa_pairs, *x.shape)).astype(np.float32)
            probe = epsilon / 2
            d = distance(np.concatenate([x + probe * u, x - probe * u]))
            change = d[: cfg.spsa_pairs] - d[cfg.spsa_pairs :]
            gradient = (change[:, None, None, None] * u).mean(0)
            x = np.clip(
                np.clip(x - epsilon / 4 * np.sign(gradient), x0 - epsilon, x0 + epsilon), 0, 1
            )
        final = distance(x[None])[0]
        passed += bool(embedding_logit(final, evaluation.platt) >= threshold)
    return passed / max(len(crops), 1)
