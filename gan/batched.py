"""Training many persons' GANs at once: every person keeps their own networks, optimiser state and
random stream, but their parameters are stacked (torch.func.stack_module_state) and one vmapped
forward and backward serves them all, so a GPU runs P small networks as one large one.

Person p's result is the one train_person_gan gives for their crops alone (same seed, same draws
in the same order; tests compare them); only the non-saturating loss is batched, and batched runs
take no checkpoints (a restart retrains the batch).
"""

import copy
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from gan.augment import diff_augment
from gan.dcgan import DCGANConfig, Discriminator, Encoder, Generator, weights_init
from gan.train import TrainConfig, TrainedGAN, to_tensor

BatchProgress = Callable[[int, int, list[dict[str, float]]], None]  # (step, total, per person)


class Stacked:
    """P copies of one architecture as stacked parameters and buffers, called through vmap."""

    def __init__(self, modules: list[nn.Module]):
        self.params, self.buffers = stack_module_state(modules)
        self.base = copy.deepcopy(modules[0]).to("meta")
        self.base.train()

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Inputs carry a leading person dimension; so do the outputs."""

        def one(params, buffers, *xs):
            return functional_call(self.base, (params, buffers), xs)

        return vmap(one)(self.params, self.buffers, *inputs)

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def unstack_into(self, module: nn.Module, p: int) -> nn.Module:
        state = {k: v[p].detach().clone() for k, v in {**self.params, **self.buffers}.items()}
        module.load_state_dict(state)
        return module.eval()


def train_person_gans(
    crops: list[np.ndarray],
    config: TrainConfig | None = None,
    net: DCGANConfig | None = None,
    device: torch.device | str = "cpu",
    progress: BatchProgress | None = None,
) -> list[TrainedGAN]:
    """Train one GAN per entry of `crops` ((N_p, 64, 64, 3) uint8 each), all at once."""
    cfg, net = config or TrainConfig(), net or DCGANConfig()
    if cfg.loss != "nonsat":
        raise ValueError("batched training supports the non-saturating loss only")
    device = torch.device(device)
    people = len(crops)
    data = []
    for c in crops:
        t = to_tensor(c)
        data.append((torch.cat([t, t.flip(3)]) if cfg.mirror else t).to(device))

    nets = []
    for _ in range(people):  # the same initialisation train_person_gan draws
        torch.manual_seed(cfg.seed)
        trio = Generator(net).to(device), Encoder(net).to(device), Discriminator(net).to(device)
        for m in trio:
            m.apply(weights_init)
        nets.append(trio)
    g, e, d = (Stacked([trio[i] for trio in nets]) for i in range(3))
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_ge = torch.optim.Adam(g.parameters() + e.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    rngs = [torch.Generator().manual_seed(cfg.seed) for _ in range(people)]
    curves = [{"d": [], "g_adv": [], "recon": [], "kl": []} for _ in range(people)]

    def augment(batch: torch.Tensor) -> torch.Tensor:
        """Each person's slice with their own random stream, in train_person_gan's order."""
        return torch.stack([diff_augment(batch[p], rngs[p]) for p in range(people)])

    for step in range(cfg.steps):
        real, eps, z = [], [], []
        for p, rng in enumerate(rngs):
            real.append(data[p][torch.randint(len(data[p]), (cfg.batch_size,), generator=rng)])
            eps.append(torch.randn(cfg.batch_size, net.nz, generator=rng))
            z.append(torch.randn(cfg.batch_size, net.nz, generator=rng))
        real = torch.stack(real)
        eps, z = torch.stack(eps).to(device), torch.stack(z).to(device)
        mu, logvar = e(real)
        recon = g(mu + eps * torch.exp(0.5 * logvar))
        prior = g(z)

        # (1) update D: per person, real crops against reconstructions and prior samples
        for t in d.parameters():
            t.grad = None
        aug_real, aug_recon, aug_prior = (
            augment(real),
            augment(recon.detach()),
            augment(prior.detach()),
        )
        loss_d = (
            F.softplus(-d(aug_real)).mean(1)
            + (F.softplus(d(aug_recon)).mean(1) + F.softplus(d(aug_prior)).mean(1)) / 2
        )
        loss_d.sum().backward()  # persons share no parameter: each gets its own gradient
        opt_d.step()

        # (2) update G and E
        opt_ge.zero_grad(set_to_none=True)
        adv_recon, adv_prior = d(augment(recon)), d(augment(prior))
        adv = (F.softplus(-adv_recon).mean(1) + F.softplus(-adv_prior).mean(1)) / 2
        rec = (recon - real).abs().flatten(1).mean(1)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).flatten(1).mean(1)
        (adv + cfg.recon_weight * rec + cfg.kl_weight * kl).sum().backward()
        opt_ge.step()

        latest = []
        for p in range(people):
            row = {
                "d": loss_d[p].item(),
                "g_adv": adv[p].item(),
                "recon": rec[p].item(),
                "kl": kl[p].item(),
            }
            for k, v in row.items():
                curves[p][k].append(v)
            latest.append(row)
        if progress is not None:
            progress(step + 1, cfg.steps, latest)

    out = []
    for p in range(people):
        gp = g.unstack_into(Generator(net).to(device), p)
        ep = e.unstack_into(Encoder(net).to(device), p)
        dp = d.unstack_into(Discriminator(net).to(device), p)
        out.append(TrainedGAN(gp, ep, dp, net, cfg, cfg.steps, curves[p]))
    return out
