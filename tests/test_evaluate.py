"""The evaluation harness on a small real subset: two glint identities enrolled from photos,
strangers from glint and celeba_wild, test-sized training. The metric code itself is checked
against hand-computed values in test_metrics.py; here the harness must wire it up right."""

import json

import numpy as np
import pytest

from evaluate import SYSTEMS, EvalConfig, run_evaluation
from evaluate.harness import open_set, verification


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    from facegate.settings import Settings

    root = tmp_path_factory.mktemp("eval")
    settings = Settings(
        _env_file=None,
        data_dir=root / "data",
        gan_steps=8,
        verifier_steps=20,
        general_steps=20,
        gan_samples=8,
    )
    config = EvalConfig(
        data=data,
        identities=2,
        enroll_photos=10,
        clip=False,
        glint_strangers=2,
        celeba_identities=3,
        attack_samples=4,
        adversarial_probes=4,
        budgets=(8 / 255,),
        pgd_steps=3,
    )
    out = root / "out"
    return run_evaluation(config, settings, out, say=lambda _: None), out


def test_the_harness_writes_every_output(run):
    results, out = run
    assert json.loads((out / "results.json").read_text())["data"] == results["data"]
    assert (out / "det.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "adversarial.png").read_bytes()[:4] == b"\x89PNG"
    summary = (out / "summary.md").read_text()
    for name in ("(a) embedding only", "(b) + personal D, no GAN", "(d) full: + general D"):
        assert name in summary
    assert "no breakdown is possible" in summary
    adv = results["adversarial"]
    assert adv["probes"] == 4
    row = adv["by_budget"][0]
    assert {"fgsm_a", "pgd_a", "fgsm_b", "pgd_c", "pgd_d"} <= set(row)
    assert all(0 <= v <= 1 for k, v in row.items() if k.startswith(("fgsm", "pgd")))


def test_the_counts_follow_from_the_data(run):
    results, _ = run
    d = results["data"]
    assert d["enrolled"] == ["Barack Obama", "Daniel Radcliffe"]
    # 40 photos each, 10 enrolled: 30 probes each, less any photo without a face
    mated, non_mated = d["mated_probes"], d["non_mated_probes"]
    assert 50 <= mated <= 60 and non_mated >= 75
    for s in SYSTEMS:
        v = results["verification"][s]
        assert v["genuine"] == mated
        assert v["impostor"] == non_mated * 2 + mated  # strangers x 2 persons, probes x other
        o = results["open_set"][s]
        assert o["mated_searches"] == mated and o["non_mated_searches"] == non_mated
        for point in v["fnmr_at_fmr"].values():
            assert 0 <= point["rate"] <= 1 and point["ci95"][0] <= point["rate"] <= point["ci95"][1]
        # the rule of three: FMR 1e-2 needs 300 impostor comparisons, 1e-4 needs 30000
        assert v["fnmr_at_fmr"]["0.01"]["measurable"] == (v["impostor"] >= 300)
        assert not v["fnmr_at_fmr"]["0.0001"]["measurable"]
    # the embedding baseline tells these two apart from strangers almost always
    assert results["open_set"]["a"]["rank1"] > 0.9
    f = results["failure_rates"]
    assert f["fte"]["attempts"] == 2 and f["fte"]["failures"] == 0
    assert f["fta"]["attempts"] == 2 * 30 + 2 * 40 + 15  # every probe image tried once
    assert f["fta"]["failures"] == f["fta"]["attempts"] - mated - non_mated
    # a face the door's quality gate refuses failed to acquire; so did a photo without one
    refused = sum(f["fta_poor_quality"].values())
    assert set(f["fta_poor_quality"]) <= {
        "blurred",
        "too_bright",
        "too_dark",
        "too_small",
        "cut_off",
        "low_confidence",
    }
    assert 0 < refused <= f["fta"]["failures"]


def test_metrics_over_a_hand_made_score_matrix():
    # two persons; probes: person 0 twice, person 1 once, two strangers
    owner = np.array([0, 0, 1, -1, -1])
    a = np.array([[5.0, 0.0], [1.0, 2.0], [0.0, 4.0], [3.0, 0.5], [0.2, 0.1]])
    scores = {s: a for s in SYSTEMS}
    v = verification(scores, owner)["a"]
    assert v["genuine"] == 3 and v["impostor"] == 7  # 3 probes x 1 other + 2 strangers x 2
    # impostor scores: 0.0, 2.0, 0.0, 3.0, 0.5, 0.2, 0.1; FMR <= 0.01 of 7 allows none: t > 3
    # genuine 5, 1, 4: 1 is missed -> FNMR 1/3
    assert v["fnmr_at_fmr"]["0.01"]["rate"] == pytest.approx(1 / 3)
    o = open_set(scores, owner)["a"]
    # rank 1: probe 0 -> 0 right, probe 1 -> 1 wrong, probe 2 -> 1 right: 2/3
    assert o["rank1"] == pytest.approx(2 / 3)
    # non-mated tops 3.0 and 0.2; FPIR <= 0.01 of 2 allows none: t > 3 -> hits 5 and 4 of
    # (5, -inf, 4): FNIR 1/3
    assert o["fnir_at_fpir"]["0.01"]["rate"] == pytest.approx(1 / 3)
