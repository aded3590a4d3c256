"""Measure synthesized samples with the face pipeline: do they verify as the person, are they as
varied as the real crops, has the generator collapsed? Only samples that pass join the person's data.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from facegate.settings import Settings
from recognize import FacePipeline, face_distance


@dataclass
class SampleAssessment:
    embeddings: np.ndarray  # (N, dim) of the samples
    median_distance: np.ndarray  # (N,) to the person's real samples
    passed: np.ndarray  # (N,) bool: verifies as the person
    identity_rate: float  # share that passed
    diversity: float  # mean pairwise embedding distance of the samples
    real_diversity: float  # the same for the person's real samples
    collapsed: bool

    def summary(self) -> dict:
        return {
            "samples": len(self.passed),
            "identity_rate": round(self.identity_rate, 4),
            "diversity": round(self.diversity, 4),
            "real_diversity": round(self.real_diversity, 4),
            "collapsed": self.collapsed,
        }


def mean_pairwise_distance(vectors: np.ndarray) -> float:
    if len(vectors) < 2:
        return 0.0
    d = face_distance(vectors, vectors)
    return float(d[np.triu_indices(len(vectors), 1)].mean())


def assess_samples(
    samples: np.ndarray, real_embeddings: np.ndarray, pipeline: FacePipeline, settings: Settings
) -> SampleAssessment:
    """Assess (N, side, side, 3) uint8 samples aligned like the enrollment crops.

    A sample verifies as the person when its MEDIAN distance to their real samples is within the
    threshold: the minimum over 40 samples would let impostors through (measured by
    benchmarks/thresholds.py: the nearest of 40 accepted 16.1% of 87 impostor faces at 0.6), the
    median separates cleanly (held-out frames of the person at most 0.508, other people at least
    0.632 on the shared data).
    """
    size = pipeline.embedder.input_px
    # the GAN crops share the embedder's template, so resizing is the whole alignment
    crops = [cv2.resize(s, (size, size), interpolation=cv2.INTER_CUBIC) for s in samples]
    vectors = pipeline.embed(crops)
    median = np.median(face_distance(vectors, real_embeddings), axis=1)
    threshold = settings.sample_identity_max_distance or pipeline.embedder.same_person_max_distance
    passed = median <= threshold
    diversity = mean_pairwise_distance(vectors)
    real_diversity = mean_pairwise_distance(real_embeddings)
    return SampleAssessment(
        embeddings=vectors,
        median_distance=median,
        passed=passed,
        identity_rate=float(passed.mean()) if len(passed) else 0.0,
        diversity=diversity,
        real_diversity=real_diversity,
        collapsed=diversity < settings.collapse_diversity_ratio * real_diversity,
    )
