"""Pacing: how many calls to place now (pure; no I/O).

The campaign runner builds a :class:`PacingSnapshot` at each decision epoch (about once a
second) from live agent and call states, the :class:`OutcomeEstimator`'s current
:class:`PacingModel` and its abandonment counts, and calls :func:`decide` (or a
:class:`PredictivePacer` directly). The :class:`PacingDecision` says how many calls to place and why.
"""

from dialer.pacing.amd import AmdGovernor, AmdGovernorConfig, AmdState
from dialer.pacing.estimators import (
    DurationPrior,
    EstimatorPriors,
    OutcomeEstimator,
    PacingModel,
    RateEstimator,
)
from dialer.pacing.policies import (
    PredictiveConfig,
    PredictivePacer,
    decide,
    ivr,
    preview,
    progressive,
)
from dialer.pacing.snapshot import AbandonCounts, AmdMode, DialMode, PacingDecision, PacingSnapshot

__all__ = [
    "AbandonCounts",
    "AmdGovernor",
    "AmdGovernorConfig",
    "AmdMode",
    "AmdState",
    "DialMode",
    "DurationPrior",
    "EstimatorPriors",
    "OutcomeEstimator",
    "PacingDecision",
    "PacingModel",
    "PacingSnapshot",
    "PredictiveConfig",
    "PredictivePacer",
    "RateEstimator",
    "decide",
    "ivr",
    "preview",
    "progressive",
]
