"""Adversarial attacks (L-infinity, white-box) that try to pass an impostor's face as the enrolled
person it is nearest to, through the whole system.

The attacker perturbs the aligned 150 px crop the embedder sees; the 64 px crop the discriminators
see is that crop area-downsampled (both are the same template alignment at two sizes), so one
perturbation moves every term at once. The embedder is dlib's ResNet in torch
(recognize/dlib_resnet.py), so gradients reach the pixels through the embedding too:
  (a) ascends the embedding score (the distance to the target's nearest sample);
  (b), (c) ascend their fused score (recognize/fusion.py: embedding, nearest-3 distance, personal
      discriminator, nearest GAN sample);
  (d) ascends (c)'s fused score plus the general discriminator's liveness logit and the
      synthetic-face check's logit, and must pass both checks at their calibrated thresholds too.
FGSM is one step of the whole budget; PGD takes `pgd_steps` steps of 2.5 budget / steps. The final
image is rounded to 8 bits, as an attacker's image is, before it is scored."""

import numpy as np
import torch
import torch.nn.functional as F

SYSTEMS_ATTACKED = ("a", "b", "c", "d")


def _ascend(objective, x0: torch.Tensor, epsilon: float, steps: int) -> torch.Tensor:
    """Maximise objective(x) (summed over the batch) within an L-inf ball of `epsilon` around x0
    (pixels in [0, 1]); steps=1 is FGSM. Returns the 8-bit image."""
    step = epsilon if steps == 1 else 2.5 * epsilon / steps
    adv = x0.clone()
    for _ in range(steps):
        adv.requires_grad_(True)
        (grad,) = torch.autograd.grad(objective(adv).sum(), adv)
        with torch.no_grad():
            adv = adv + step * grad.sign()
            adv = torch.clamp(torch.min(torch.max(adv, x0 - epsilon), x0 + epsilon), 0, 1)
    return torch.round(adv.detach() * 255) / 255


def adversarial(evaluation, probes, thresholds: dict) -> dict:
    """Success rate against the budget: the share of never-enrolled faces that, perturbed, reach
    the system's FMR = 1e-3 threshold as the enrolled person they are nearest to."""
    cfg = evaluation.config
    network = getattr(evaluation.pipeline.embedder, "network", None)
    if network is None:
        return {"note": "the embedder runs outside torch (dlib-bin runtime): no white-box attack"}
    strangers = np.flatnonzero(probes.owner < 0)
    rng = np.random.default_rng(cfg.seed)
    chosen = rng.choice(strangers, size=min(cfg.adversarial_probes, len(strangers)), replace=False)
    target = evaluation.embedding_logits(probes.embeddings[chosen]).argmax(1)
    offset = len(probes.owner) - len(evaluation.stranger_crops)  # strangers are the last rows
    crops = evaluation.stranger_crops[chosen - offset]  # the embedder's own 150 px crops
    x0 = torch.from_numpy(crops).permute(0, 3, 1, 2).to(network.mean.device).float() / 255
    models = [p.models for p in evaluation.persons]
    for per_person in models:
        for m in per_person.values():
            m.requires_grad_(False)
    evaluation.general.requires_grad_(False)
    # each face's gate is its own fold's (calibrated on the other half)
    gates = [evaluation.gates[int(f)] for f in probes.fold[chosen]]
    t_live = np.array([g.general_threshold for g in gates])
    live_min = np.log(t_live / (1 - t_live))
    syn_min = np.array([g.synthetic_threshold for g in gates], dtype=np.float64)

    def terms(x: torch.Tensor, system: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(score, liveness logit, synthetic-face check) of each face against its target,
        differentiable."""
        embedding = network(x * 255)
        pixels_64 = F.interpolate(x, size=64, mode="area")
        crop_64 = pixels_64 * 2 - 1
        live = evaluation.general(crop_64).float().reshape(-1)
        synthetic = evaluation.check.score_torch(pixels_64.double() * 255).float()
        scores = []
        for i, t in enumerate(target):
            person = evaluation.persons[t]
            personal = None
            if system != "a":
                model = person.models["b" if system == "b" else "c"]
                personal = model(crop_64[i : i + 1]).float().reshape(())
            scores.append(evaluation.fused_torch(system, int(t), embedding[i], personal))
        return torch.stack(scores), live, synthetic

    def passes(system: str, x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            score, live, synthetic = terms(x, system)
        ok = score.cpu().numpy() >= thresholds[system]
        if system == "d":
            ok &= live.cpu().numpy() >= live_min
            ok &= synthetic.cpu().numpy() >= syn_min
        return ok

    clean = {s: float(passes(s, x0).mean()) for s in SYSTEMS_ATTACKED}
    rows = []
    for epsilon in cfg.budgets:
        row = {"epsilon": epsilon, "epsilon_255": round(epsilon * 255, 2)}
        for method, steps in (("fgsm", 1), ("pgd", cfg.pgd_steps)):
            for system in SYSTEMS_ATTACKED:

                def objective(x, system=system):
                    score, live, synthetic = terms(x, system)
                    return score + live + synthetic if system == "d" else score

                adv = _ascend(objective, x0, epsilon, steps)
                row[f"{method}_{system}"] = float(passes(system, adv).mean())
        rows.append(row)
    return {
        "probes": int(len(chosen)),
        "pgd_steps": cfg.pgd_steps,
        "clean_success": clean,
        "by_budget": rows,
        "note": (
            "white-box on every system through the torch embedder: one perturbation of the "
            "150 px crop moves the embedding and (area-downsampled) the 64 px discriminator input"
        ),
    }
