"""The evaluation run: faces, enrollments, the four systems, their score matrices, the metrics.

Systems, all scored on the same faces in one run:
  (a) embedding  the embedding-distance log-likelihood ratio alone (what face_recognition and
                 CompreFace do: nearest template, distance threshold)
  (b) +D no GAN  a fusion learned on trials (recognize/fusion.py) of (a), the mean distance to the
                 person's 3 nearest real samples and a personal discriminator trained from a fresh
                 start without GAN samples
  (c) +D +GAN    the same with the personal discriminator as facegate trains it (from the person's
                 GAN's discriminator, with the GAN's identity-checked samples as extra positives),
                 plus the distance to the nearest of those samples' embeddings (the GAN's poses
                 between the frames as extra gallery)
  (d) full       (c) behind the presentation-attack checks as the product runs them
                 (recognize/authenticity.py): the general discriminator and the synthetic-face
                 check, their thresholds read off bona fide captures the way `facegate calibrate`
                 reads them off its calibration faces (here: the other half's never-enrolled
                 faces, at most authenticity_max_bpcer of them rejected, and the enrolled
                 persons' every 4th crop, which the check is not fitted on). No quality gate:
                 the product's would also stop blurred presentations (the phone replay)
The fusions are fitted by 2-fold cross-validation: probes are split in two (mated probes
alternately within each person, never-enrolled faces by identity), each half is scored by the
fusion fitted on the other half's trials, so no trial is scored by a model fitted on it; the
embedding term of (b)-(d) is normalised by each person's cohort (recognize/fusion.py cohort_norm)
from the other half's never-enrolled faces. Attacks, which no model is fitted on, are scored by
the two folds' models in turn; the adversarial probes by the mean of the two folds' fusions.
Accept when the score reaches the threshold (ISO/IEC 19795-1). Enrolled identities come from
glint_celebs (photos) and real.mov (a clip); never-enrolled faces from the other glint identities
and celeba_wild.
"""

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from enroll import enroll_frames, read_photos, read_video
from enroll.personal import PersonalModels, train_personal_models
from enroll.sources import clip_frames
from facegate.errors import EnrollmentError
from facegate.metrics import det_curve, miss_rate_at, presentation_attack_rates
from facegate.settings import Settings
from gan.general import GeneralConfig, simulate_attacks, train_general
from gan.stored import StoredGenerator
from gan.train import to_tensor
from gan.verifier import CalibratedDiscriminator
from recognize import FacePipeline, face_distance
from recognize.authenticity import Authenticity, calibrate_authenticity, fit_synthetic_check
from recognize.calibration import FaceSet, face_set, held_out
from recognize.fusion import PRODUCT_TERMS, Fusion, candidate_features, cohort_norm, fit_fusion
from recognize.levels import DEFAULT_EMBEDDING_PLATT, embedding_logit
from recognize.quality import door_gate

SYSTEMS = ("a", "b", "c", "d")
SYSTEM_NAMES = {
    "a": "(a) embedding only",
    "b": "(b) + personal D, no GAN",
    "c": "(c) + personal D with GAN samples",
    "d": "(d) full: + general D",
}
FMR_TARGETS = (1e-2, 1e-3, 1e-4)
FPIR_TARGETS = (1e-2, 1e-3)
OPERATING_FMR = 1e-3  # the threshold attacks are judged at (security level 6)
FUSED_TERMS = {
    "b": ["embedding", "nearest_3", "personal"],
    "c": ["embedding", "nearest_3", "personal", "synthetic"],
}


@dataclass
class EvalConfig:
    data: Path  # the shared data folder
    identities: int = 6  # glint_celebs identities enrolled from photos
    enroll_photos: int = 12  # photos each is enrolled from; the rest probe
    clip: bool = True  # also enroll real.mov; fake.mp4 gives live probes and a real replay attack
    glint_strangers: int | None = None  # never-enrolled glint identities (None: all the rest)
    celeba_identities: int = 224  # never-enrolled celeba_wild identities
    attack_samples: int = 16  # GAN samples per enrolled person, as attacks
    adversarial_probes: int = 24  # never-enrolled faces attacked with FGSM/PGD
    budgets: tuple[float, ...] = (1 / 255, 2 / 255, 4 / 255, 8 / 255)
    pgd_steps: int = 10
    seed: int = 0
    state: Path | None = None  # where to keep the enrolled persons and faces (torch.save)


@dataclass
class Person:
    name: str
    embeddings: np.ndarray  # the enrollment's real embeddings
    crops: np.ndarray  # the enrollment's real 64 px crops
    models: dict[str, CalibratedDiscriminator]  # "b", "c"
    generator: StoredGenerator | None
    synthetic: np.ndarray  # embeddings of the GAN samples that verified as the person
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class Probes:
    """Faces scored against every enrolled person: embeddings, 64 px crops, whose they are
    (an index into the enrolled persons, or -1 for never enrolled)."""

    embeddings: np.ndarray
    crops: np.ndarray
    owner: np.ndarray
    crops_embedder: np.ndarray | None = None  # what the embedder saw (strangers only)
    fold: np.ndarray | None = None  # 0 or 1: the cross-validation half (None: not in the CV)

    @staticmethod
    def join(parts: list["Probes"]) -> "Probes":
        parts = [p for p in parts if len(p.owner)]
        folds = [p.fold for p in parts]
        return Probes(
            np.concatenate([p.embeddings for p in parts]),
            np.concatenate([p.crops for p in parts]),
            np.concatenate([p.owner for p in parts]),
            fold=None if any(f is None for f in folds) else np.concatenate(folds),
        )


Say = Callable[[str], None]


def glint_photos(folder: Path) -> tuple[list[np.ndarray], list[str]]:
    """Glint360K's aligned 112 px crops padded to 224, so MTCNN sees a whole head."""
    photos = read_photos(folder)
    frames = [cv2.copyMakeBorder(f, 56, 56, 56, 56, cv2.BORDER_REPLICATE) for f in photos.frames]
    return frames, photos.names


def glint_enrollment(folder: Path, first: int):
    """(the sampled photos of `first` padded glint photos, to enroll from; every padded photo)."""
    frames, names = glint_photos(folder)
    sampled = read_photos(folder)
    sampled = replace(
        sampled,
        frames=frames[:first],
        frame_indices=sampled.frame_indices[:first],
        times_s=sampled.times_s[:first],
        names=names[:first],
    )
    return sampled, frames


class Evaluation:
    def __init__(self, config: EvalConfig, settings: Settings, say: Say = print):
        self.config, self.settings, self.say = config, settings, say
        self.pipeline = FacePipeline(settings)
        self.platt = DEFAULT_EMBEDDING_PLATT[settings.embedder]
        self.persons: list[Person] = []
        self.acquisition = {"attempts": 0, "failures": 0, "poor_quality": {}}
        self.gate = door_gate(settings)
        self.enrolment = {"attempts": 0, "failures": 0, "reasons": []}
        self.seconds: dict[str, float] = {}

    # --- faces ---------------------------------------------------------------------------------

    def _faces(
        self, frames: list[np.ndarray], label: str, keep: bool = False, attack: bool = False
    ) -> FaceSet | None:
        """The faces the door's quality gate lets through to the models, as the product judges
        them; the others failed to acquire. Attack presentations keep every face found, each
        with the quality test it fails (the door refuses those before any model)."""
        frames_in = ((f, label) for f in frames)
        try:
            found = face_set(frames_in, self.pipeline, keep_embedder_crops=keep, gate=self.gate)
        except ValueError:  # no face in any of them
            found = None
        if attack:
            return found
        self.acquisition["attempts"] += len(frames)
        usable = None
        if found is not None:
            counts = self.acquisition["poor_quality"]
            for issue, n in found.refused().items():
                counts[issue] = counts.get(issue, 0) + n
            if (found.issues == "").any():
                usable = found.usable()
        self.acquisition["failures"] += len(frames) - (len(usable) if usable is not None else 0)
        return usable

    def _probes(self, found: FaceSet | None, owner: int) -> Probes:
        if found is None:
            empty = np.zeros(0, int)
            return Probes(
                np.zeros((0, 128), np.float32),
                np.zeros((0, 64, 64, 3), np.uint8),
                empty,
                None,
                empty,
            )
        if owner >= 0:  # one person's probes alternate between the halves
            fold = np.arange(len(found)) % 2
        else:  # a never-enrolled identity lies wholly in one half
            fold = np.array([zlib.crc32(str(i).encode()) % 2 for i in found.identity])
        return Probes(
            found.embeddings, found.crops_64, np.full(len(found), owner), found.crops_embedder, fold
        )

    # --- enrollment ----------------------------------------------------------------------------

    def _enroll(self, name: str, sampled, others) -> Person | None:
        self.enrolment["attempts"] += 1
        t0 = time.perf_counter()
        try:
            result = enroll_frames(sampled, name, self.pipeline, self.settings)
            with_gan = train_personal_models(result, self.pipeline, self.settings, others)
            without = train_personal_models(
                result, self.pipeline, self.settings, None, with_gan=False
            )
        except EnrollmentError as error:
            self.enrolment["failures"] += 1
            self.enrolment["reasons"].append(f"{name}: {error.code}")
            self.say(f"  {name}: failed to enrol ({error.code})")
            return None
        person = Person(
            name,
            result.embeddings,
            result.crops_gan,
            {"b": _model(without), "c": _model(with_gan)},
            StoredGenerator.from_bytes(with_gan.generator),
            with_gan.assessment.embeddings[with_gan.kept],
        )
        person.seconds = {"enroll_and_train": round(time.perf_counter() - t0, 1)}
        self.say(f"  {name}: enrolled from {len(result.embeddings)} faces, {person.seconds}")
        self.gan_figures.append(with_gan.summary())
        return person

    def _others(self) -> tuple[np.ndarray, np.ndarray]:
        """Earlier persons' generator samples, lent as negatives (as enrollment does)."""
        crops, owners = [np.zeros((0, 64, 64, 3), np.uint8)], [np.zeros(0, int)]
        for i, p in enumerate(self.persons[-self.settings.verifier_other_persons :]):
            crops.append(p.generator.samples(self.settings.verifier_samples_per_other, seed=5))
            owners.append(np.full(len(crops[-1]), i))
        return np.concatenate(crops), np.concatenate(owners)

    # --- the run -------------------------------------------------------------------------------

    def run(self) -> dict:
        cfg, data = self.config, self.config.data
        self.gan_figures: list[dict] = []
        started = time.perf_counter()
        glint = sorted(p for p in (data / "glint_celebs").iterdir() if p.is_dir())
        if len(glint) < cfg.identities + 1:
            raise ValueError(f"glint_celebs holds {len(glint)} identities; need more than that")

        self.say(f"enrolling {cfg.identities} glint identities + {'real.mov' if cfg.clip else ''}")
        mated, replay = [], None
        for folder in glint[: cfg.identities]:
            k = cfg.enroll_photos
            sampled, frames = glint_enrollment(folder, k)
            person = self._enroll(folder.name, sampled, self._others())
            if person is not None:
                self.persons.append(person)
                mated.append(
                    self._probes(self._faces(frames[k:], folder.name), len(self.persons) - 1)
                )
        if cfg.clip:
            clip_dir = data / "liveness_replay_pyimagesearch"
            sampled = read_video(
                clip_dir / "real.mov",
                self.settings.sample_fps,
                self.settings.max_clip_seconds,
                self.settings.frame_max_side_px,
            )
            person = self._enroll("real.mov person", sampled, self._others())
            if person is not None:
                self.persons.append(person)
                frames = clip_frames(clip_dir / "fake.mp4", 95)
                # fake.mp4 opens with the person live in the room; from 2.3 s only the phone
                # replaying their face is in view
                live = self._faces(frames[0:20], "live")
                mated.append(self._probes(live, len(self.persons) - 1))
                replay = self._faces(frames[40:95], "replay", attack=True)
        self.seconds["enrollment"] = round(time.perf_counter() - started, 1)
        if not self.persons:
            raise ValueError("no identity could be enrolled; nothing to evaluate")

        t0 = time.perf_counter()
        self.say("never-enrolled faces: the other glint identities and celeba_wild")
        strangers = []
        others = glint[cfg.identities :][: cfg.glint_strangers]
        for folder in others:
            frames, _ = glint_photos(folder)
            strangers.append(self._probes(self._faces(frames, folder.name, keep=True), -1))
        celeba = sorted(p for p in (data / "celeba_wild").iterdir() if p.is_dir())
        for folder in celeba[: cfg.celeba_identities]:
            frames = read_photos(folder).frames
            strangers.append(self._probes(self._faces(frames, folder.name, keep=True), -1))
        probes = Probes.join(mated + strangers)
        # the strangers come last: their embedder crops line up with the last rows
        self.stranger_crops = np.concatenate([p.crops_embedder for p in strangers if len(p.owner)])
        self.seconds["faces"] = round(time.perf_counter() - t0, 1)

        t0 = time.perf_counter()
        self.say("general discriminator for (d)")
        self.general = self._general()
        self.seconds["general"] = round(time.perf_counter() - t0, 1)
        if cfg.state is not None:
            kept = ("persons", "general", "stranger_crops", "acquisition", "enrolment")
            torch.save(
                {"probes": probes, "replay": replay, **{k: getattr(self, k) for k in kept}},
                cfg.state,
            )

        t0 = time.perf_counter()
        self.say(
            f"fusions and scores: {len(probes.owner)} faces against {len(self.persons)} persons"
        )
        self.fit_norms(probes)
        features = self.features(probes, fold=probes.fold)
        self.fit_gates(features, probes)
        self.fit_fusions(features, probes)
        scores = self.score(probes, features=features, fold=probes.fold)
        results = {
            "verification": verification(scores, probes.owner),
            "open_set": open_set(scores, probes.owner),
            "fusion": {s: [f.to_dict() for f in self.fusions[s]] for s in sorted(self.fusions)},
        }
        thresholds = {s: results["verification"][s]["operating_threshold"] for s in SYSTEMS}
        results["presentation_attacks"] = self.attacks(probes, replay, thresholds)
        self.seconds["scoring"] = round(time.perf_counter() - t0, 1)

        t0 = time.perf_counter()
        from evaluate.adversarial import adversarial

        self.say(f"FGSM and PGD on {cfg.adversarial_probes} never-enrolled faces")
        results["adversarial"] = adversarial(self, probes, thresholds)
        self.seconds["adversarial"] = round(time.perf_counter() - t0, 1)

        results["failure_rates"] = {
            "fte": _rate(self.enrolment["failures"], self.enrolment["attempts"]),
            "fte_reasons": self.enrolment["reasons"],
            "fta": _rate(self.acquisition["failures"], self.acquisition["attempts"]),
            "fta_poor_quality": self.acquisition["poor_quality"],
        }
        results["demographics"] = (
            "none: neither glint_celebs nor celeba_wild (labels.csv holds only the CelebA "
            "identity) carries demographic labels, so no breakdown is possible on this data"
        )
        results["data"] = {
            "enrolled": [p.name for p in self.persons],
            "enroll_photos": cfg.enroll_photos,
            "mated_probes": int((probes.owner >= 0).sum()),
            "non_mated_probes": int((probes.owner < 0).sum()),
            "glint_identities_never_enrolled": len(others),
            "celeba_identities": min(cfg.celeba_identities, len(celeba)),
            "embedding_platt": list(self.platt),
        }
        results["gan"] = self.gan_figures
        results["settings"] = {
            k: getattr(self.settings, k)
            for k in ("gan_steps", "verifier_steps", "general_steps", "gan_samples", "embedder")
        }
        self.seconds["total"] = round(time.perf_counter() - started, 1)
        results["seconds"] = self.seconds
        return results

    # --- scores --------------------------------------------------------------------------------

    def _general(self) -> CalibratedDiscriminator:
        """The enrolled persons' crops against their generators' samples and the attack
        simulations, as enrollment trains it (on everyone's crops). The synthetic-face check is
        fitted on the same crops and samples, as `facegate calibrate` fits it."""
        real = np.concatenate([p.crops for p in self.persons])
        generated = np.concatenate(
            [p.generator.samples(64, seed=2) for p in self.persons]
            + [p.generator.prior(32, seed=3) for p in self.persons]
        )
        # the check holds out every 4th crop of each person, as calibrate does: bona fide
        # captures of the enrollment cameras that set its threshold with the never-enrolled faces
        held = np.concatenate([held_out(len(p.crops)) for p in self.persons])
        self.check = fit_synthetic_check(real[~held], generated)
        self.enrolled_synthetic = self.check.score(real[held])
        model, _ = train_general(real, generated, GeneralConfig(steps=self.settings.general_steps))
        return model.eval()

    @torch.no_grad()
    def personal_logits(self, system: str, crops: np.ndarray) -> np.ndarray:
        """(N, persons) calibrated logits of every person's system-`system` discriminator."""
        x = to_tensor(crops)
        return np.stack([p.models[system](x).float().numpy() for p in self.persons], axis=1)

    def embedding_logits(self, embeddings: np.ndarray) -> np.ndarray:
        distance = np.stack(
            [face_distance(embeddings, p.embeddings).min(1) for p in self.persons], axis=1
        )
        return embedding_logit(distance, self.platt)

    @torch.no_grad()
    def live(self, crops: np.ndarray) -> np.ndarray:
        return self.general.probability(crops)

    def embedding_features(self, embeddings: np.ndarray) -> dict[str, np.ndarray]:
        """(N, persons) each: the product's embedding terms (recognize/fusion.py): the (a) score,
        minus the mean distance to the person's 3 nearest real samples, minus the distance to
        their nearest kept GAN sample."""
        per_person = [
            candidate_features(
                face_distance(embeddings, p.embeddings),
                face_distance(embeddings, p.synthetic) if len(p.synthetic) else None,
                None,
                self.platt,
            )
            for p in self.persons
        ]
        stacked = np.stack(per_person, axis=1)  # (N, persons, PRODUCT_TERMS)
        return {
            t: stacked[..., PRODUCT_TERMS.index(t)] for t in ("embedding", "nearest_3", "synthetic")
        }

    def fit_norms(self, probes: Probes) -> None:
        """Per fold and person: the adaptive normalisation (recognize/fusion.py cohort_norm) of
        the embedding score, from the other half's never-enrolled faces, as `facegate calibrate`
        takes it from its calibration faces."""
        raw = self.embedding_logits(probes.embeddings)
        self.norms: list[np.ndarray] = []  # per fold: (persons, 2) mean and deviation
        for fold in (0, 1):
            cohort = (probes.owner < 0) & (probes.fold != fold)
            self.norms.append(np.array([cohort_norm(raw[cohort, j]) for j in range(raw.shape[1])]))

    def features(
        self, probes: Probes, live: np.ndarray | None = None, fold=None
    ) -> dict[str, np.ndarray]:
        """Every fusion term of every probe against every person, (N, persons) each. The fused
        systems' embedding term is normalised by each face's fold (faces in no fold, attacks:
        the two folds in turn)."""
        out = self.embedding_features(probes.embeddings)
        n = len(probes.owner)
        fold = np.arange(n) % 2 if fold is None else np.asarray(fold)
        norm = np.where((fold == 0)[:, None, None], self.norms[0][None], self.norms[1][None])
        out["embedding_normed"] = (out["embedding"] - norm[..., 0]) / norm[..., 1]
        out["personal_b"] = self.personal_logits("b", probes.crops)
        out["personal_c"] = self.personal_logits("c", probes.crops)
        out["live"] = self.live(probes.crops) if live is None else live
        out["synthetic_check"] = self.check.score(probes.crops)
        return out

    @staticmethod
    def term_matrix(features: dict[str, np.ndarray], system: str) -> np.ndarray:
        """(N, persons, terms) in FUSED_TERMS[system]'s order."""
        personal = "personal_b" if system == "b" else "personal_c"
        rename = {"personal": personal, "embedding": "embedding_normed"}
        names = [rename.get(t, t) for t in FUSED_TERMS[system]]
        return np.stack([features[n] for n in names], axis=-1)

    def fit_fusions(self, features: dict[str, np.ndarray], probes: Probes) -> None:
        """Per system and fold: the fusion fitted on the other half's trials (a probe against its
        own person is genuine, against anyone else an impostor)."""
        own = probes.owner[:, None] == np.arange(len(self.persons))[None, :]
        self.fusions: dict[str, list[Fusion]] = {}
        for s in FUSED_TERMS:
            x = self.term_matrix(features, s)
            self.fusions[s] = []
            for fold in (0, 1):
                fit = probes.fold != fold
                trials, labels = x[fit].reshape(-1, x.shape[-1]), own[fit].ravel()
                # inner folds by probe, so a probe's trials against every person stay together
                groups = np.repeat(np.arange(fit.sum()) % 5, len(self.persons))
                self.fusions[s].append(fit_fusion(trials, labels, FUSED_TERMS[s], groups=groups))

    def fused(self, system: str, features: dict[str, np.ndarray], fold) -> np.ndarray:
        """(N, persons) fused scores: each probe by its fold's fusion, or by the mean of both."""
        x = self.term_matrix(features, system)
        both = [f.score(x) for f in self.fusions[system]]
        if fold is None:
            return (both[0] + both[1]) / 2
        return np.where(np.asarray(fold)[:, None] == 0, both[0], both[1])

    def fused_torch(
        self,
        system: str,
        person: int,
        embedding: torch.Tensor,
        personal: torch.Tensor | None,
    ) -> torch.Tensor:
        """One face's score against `person` in torch (what the white-box attacks ascend): the
        same terms as `features`, through the mean of the two folds' fusions."""
        p = self.persons[person]

        def distances(samples: np.ndarray) -> torch.Tensor:
            s = torch.as_tensor(samples, dtype=embedding.dtype, device=embedding.device)
            return torch.sqrt(((s - embedding) ** 2).sum(1) + 1e-12)

        d = distances(p.embeddings)
        emb = self.platt[0] * d.min() + self.platt[1]
        if system == "a":
            return emb
        if system == "d":
            system = "c"  # (d) is (c) behind the gate
        terms = {
            "embedding": emb,
            "nearest_3": -torch.topk(d, min(3, len(d)), largest=False).values.mean(),
            "personal": personal,
            "synthetic": -distances(p.synthetic).min() if len(p.synthetic) else emb * 0 - 2.0,
        }
        total = emb * 0
        for fold, fusion in enumerate(self.fusions[system]):
            mean, deviation = self.norms[fold][person]
            terms["embedding"] = (emb - mean) / deviation
            for term, weight, scale in zip(fusion.terms, fusion.weights, fusion.scale, strict=True):
                if weight:
                    total = total + weight / scale * terms[term]
            total = total + fusion.bias
        return total / len(self.fusions[system])

    def fit_gates(self, features: dict[str, np.ndarray], probes: Probes) -> None:
        """Per fold: the checks' thresholds read off the other half's never-enrolled faces (bona
        fide captures from cameras the models never saw), as `facegate calibrate` reads them."""
        self.gates: list[Authenticity] = []
        for fold in (0, 1):
            bona_fide = (probes.owner < 0) & (probes.fold != fold)
            self.gates.append(
                calibrate_authenticity(
                    features["live"][bona_fide],
                    features["synthetic_check"][bona_fide],
                    self.check,
                    self.settings.authenticity_max_bpcer,
                    self.settings.authenticity_min_probability,
                    enrolled_synthetic=self.enrolled_synthetic,
                )
            )

    def gate_margin(self, features: dict[str, np.ndarray], fold=None) -> np.ndarray:
        """(N,) >= 0 where a face passes the checks: each face by its fold's gate, or (faces in
        no fold: attacks) by the two folds' gates in turn."""
        n = len(features["live"])
        fold = np.arange(n) % 2 if fold is None else np.asarray(fold)
        margins = [g.margin(features["live"], features["synthetic_check"]) for g in self.gates]
        return np.where(fold == 0, margins[0], margins[1])

    def score(
        self,
        probes: Probes,
        live: np.ndarray | None = None,
        features: dict[str, np.ndarray] | None = None,
        fold=None,
    ) -> dict[str, np.ndarray]:
        """(N, persons) scores of each system. Faces in no fold (attacks) are scored by the two
        folds' models (normalisation, fusion, checks) in turn."""
        fold = np.arange(len(probes.owner)) % 2 if fold is None else fold
        f = self.features(probes, live, fold) if features is None else features
        out = {"a": f["embedding"], "live": f["live"]}
        for s in FUSED_TERMS:
            out[s] = self.fused(s, f, fold)
        out["gate"] = self.gate_margin(f, fold)
        out["d"] = np.where((out["gate"] >= 0)[:, None], out["c"], -np.inf)
        return out

    # --- presentation attacks ---------------------------------------------------------------

    def attacks(self, probes: Probes, replay: FaceSet | None, thresholds: dict) -> dict:
        """Attack presentations, each aimed at one enrolled person: that person's GAN samples,
        print and screen simulations of their probe photos, and (real.mov's person) the real
        phone replay. IAPMR per system at its FMR = 1e-3 threshold; APCER/BPCER of (d)'s general
        discriminator as the PAD subsystem."""
        from enroll.synthesis import assess_samples

        sets: dict[str, Probes] = {}
        gan = []
        for i, p in enumerate(self.persons):
            samples = p.generator.samples(self.config.attack_samples, seed=11)
            embedded = assess_samples(samples, p.embeddings, self.pipeline, self.settings)
            gan.append(Probes(embedded.embeddings, samples, np.full(len(samples), i)))
        sets["gan_samples"] = Probes.join(gan)
        mated = probes.owner >= 0
        for kind in ("print", "screen"):
            # a good print or replay of a photo matches like the photo: the probe's embedding,
            # the simulated capture's pixels for the discriminators
            sets[f"{kind}_simulated"] = Probes(
                probes.embeddings[mated],
                simulate_attacks(probes.crops[mated], kind, seed=self.config.seed),
                probes.owner[mated],
            )
        refused = {}  # per attack kind: presentations the door's quality gate refuses
        if replay is not None:
            sets["replay_real"] = Probes(
                replay.embeddings, replay.crops_64, np.full(len(replay), len(self.persons) - 1)
            )
            refused["replay_real"] = replay.issues != ""
        features = self.features(probes, fold=probes.fold)
        margin = self.gate_margin(features, probes.fold)
        bona_fide = margin[mated]
        out = {"iapmr": {}, "presentations": {}, "refused_at_capture": {}}
        pad_scores = {}
        for kind, attack in sets.items():
            scores = self.score(attack)
            targeted = np.arange(len(attack.owner))
            # the door answers poor_quality to a refused face before any system scores it
            passed = ~refused.get(kind, np.zeros(len(attack.owner), bool))
            out["presentations"][kind] = len(attack.owner)
            out["refused_at_capture"][kind] = int((~passed).sum())
            out["iapmr"][kind] = {
                s: float(((scores[s][targeted, attack.owner] >= thresholds[s]) & passed).mean())
                for s in SYSTEMS
            }
            pad_scores[kind] = scores["gate"]
        # the checks alone, then with the door's quality gate in front of them
        pad = presentation_attack_rates(bona_fide, pad_scores, 0.0)
        gated = {k: np.where(refused[k], -np.inf, pad_scores[k]) for k in refused}
        if gated:
            pad["apcer_with_quality_gate"] = presentation_attack_rates(bona_fide, gated, 0.0)[
                "apcer"
            ]
        pad["threshold"] = "each fold's calibrated checks"
        pad["gates"] = [g.to_dict() | {"synthetic": None} for g in self.gates]
        # bona fide captures from cameras the models never saw: the never-enrolled faces, each
        # judged by the gate calibrated on the other half
        unseen = margin[probes.owner < 0]
        pad["bpcer_unseen_cameras"] = {
            "rate": float((unseen < 0).mean()),
            "bona_fide": int(len(unseen)),
        }
        pad["gan_samples_unseen_generator"] = self._unseen_generators(
            sets["gan_samples"], probes.crops[probes.owner < 0]
        )
        out["pad_general_discriminator"] = pad
        return out

    def _unseen_generators(self, gan: Probes, bona_fide_crops: np.ndarray) -> dict:
        """Each person in turn as one enrolled after the last calibration: the synthetic-face
        check fitted without their crops and their generator, its threshold read off the
        never-enrolled faces, against their GAN samples."""
        passed = []
        for i in range(len(self.persons)):
            others = [p for j, p in enumerate(self.persons) if j != i]
            if not others:
                break
            check = fit_synthetic_check(
                np.concatenate([p.crops[~held_out(len(p.crops))] for p in others]),
                np.concatenate(
                    [p.generator.samples(64, seed=2) for p in others]
                    + [p.generator.prior(32, seed=3) for p in others]
                ),
            )
            bona_fide = check.score(bona_fide_crops)
            found = calibrate_authenticity(
                np.ones(len(bona_fide)),
                bona_fide,
                check,
                self.settings.authenticity_max_bpcer,
                1,
                enrolled_synthetic=check.score(
                    np.concatenate([p.crops[held_out(len(p.crops))] for p in others])
                ),
            )
            passed.append(check.score(gan.crops[gan.owner == i]) >= found.synthetic_threshold)
        passed = np.concatenate(passed) if passed else np.zeros(0, bool)
        return {
            "apcer": float(passed.mean()) if len(passed) else None,
            "presentations": len(passed),
        }


def _model(models: PersonalModels) -> CalibratedDiscriminator:
    return CalibratedDiscriminator.from_bytes(models.discriminator).eval()


def _rate(failures: int, attempts: int) -> dict:
    from facegate.metrics import wilson_interval

    return {
        "rate": failures / attempts if attempts else None,
        "ci95": wilson_interval(failures, attempts) if attempts else None,
        "failures": failures,
        "attempts": attempts,
    }


# --- metrics over the score matrices -------------------------------------------------------------


def verification(scores: dict[str, np.ndarray], owner: np.ndarray) -> dict:
    """1:1 comparisons: a mated probe against its own person (genuine), every other pairing
    (impostor). FNMR at each FMR target with its interval and the rule-of-three check, the DET
    points, and the threshold at the operating FMR."""
    persons = scores["a"].shape[1]
    own = owner[:, None] == np.arange(persons)[None, :]
    out = {}
    for s in SYSTEMS:
        genuine, impostor = scores[s][own], scores[s][~own]
        det = det_curve(genuine, impostor)
        out[s] = {
            "genuine": int(len(genuine)),
            "impostor": int(len(impostor)),
            "fnmr_at_fmr": {
                str(t): _point(miss_rate_at(genuine, impostor, t)) for t in FMR_TARGETS
            },
            "operating_threshold": miss_rate_at(genuine, impostor, OPERATING_FMR)["threshold"],
            "det": _thin(det),
        }
    return out


def open_set(scores: dict[str, np.ndarray], owner: np.ndarray) -> dict:
    """1:N searches against everyone enrolled: rank-1 rate of mated searches, FNIR at FPIR (a
    mated search is a hit only when its own person is first and reaches the threshold)."""
    out = {}
    mated = owner >= 0
    for s in SYSTEMS:
        matrix = scores[s]
        top = matrix.argmax(1)
        best = matrix.max(1)
        right = (top == owner) & np.isfinite(best)
        mated_scores = np.where(right[mated], best[mated], -np.inf)
        non_mated = best[~mated]
        out[s] = {
            "mated_searches": int(mated.sum()),
            "non_mated_searches": int((~mated).sum()),
            "rank1": float(right[mated].mean()),
            "fnir_at_fpir": {
                str(t): _point(miss_rate_at(mated_scores, non_mated, t)) for t in FPIR_TARGETS
            },
        }
    return out


def _point(p: dict) -> dict:
    return {
        "rate": p["miss_rate"],
        "ci95": list(p["ci95"]),
        "threshold": p["threshold"],
        "measured_false_accept": p["false_accept_rate"],
        "measurable": p["measurable"],
        "negatives_needed": p["negatives_needed"],
    }


def _thin(det: dict, points: int = 400) -> dict:
    """At most `points` DET points (evenly by index), enough to draw the curve."""
    n = len(det["threshold"])
    keep = np.unique(np.linspace(0, n - 1, min(n, points)).astype(int))
    return {k: [float(v) for v in det[k][keep]] for k in ("fmr", "fnmr")}
