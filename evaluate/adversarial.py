"""White-box FGSM and PGD (L-infinity) against the discriminators: an impostor's 64 px face crop
is perturbed to pass as the enrolled person it is nearest to.

The attack moves the pixels the discriminators see; the dlib embedding is computed by dlib, not
torch, so it is not differentiated here and the impostor's embedding term stays as it was. System
(a) uses only that term: it is not attacked by this harness, and its row is the clean rate.
(b) and (c) are attacked through their personal discriminator; (d) through the personal and the
general discriminator together (both must pass)."""

import numpy as np
import torch

from gan.train import to_tensor

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
            row[f"{method}_a"] = clean["a"]  # not attacked (see the module's note)
        rows.append(row)
    return {
        "probes": int(len(chosen)),
        "pgd_steps": cfg.pgd_steps,
        "clean_success": clean,
        "by_budget": rows,
        "note": "(a) is not attacked: its dlib embedding is not differentiable here",
    }
