"""The evaluation harness: verification, open-set identification, presentation attacks, failure
rates and adversarial robustness for four systems side by side, in the field's own metrics
(ISO/IEC 19795-1, 30107-3; NIST FRTE). One way in: `run_evaluation`."""

from evaluate.harness import SYSTEM_NAMES, SYSTEMS, EvalConfig, Evaluation
from evaluate.summary import run_evaluation, write_outputs

__all__ = ["SYSTEMS", "SYSTEM_NAMES", "EvalConfig", "Evaluation", "run_evaluation", "write_outputs"]
