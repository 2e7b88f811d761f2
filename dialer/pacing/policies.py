"""Pacing policies: how many calls to place now. Pure: a snapshot in, a :class:`PacingDecision` out.

See docs/dialer-pacing.md for the predictive model in operator terms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dialer.pacing.estimators import PacingModel
from dialer.pacing.snapshot import DialMode, PacingDecision, PacingSnapshot

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def preview(snap: PacingSnapshot) -> PacingDecision:
    """One call per agent who looked at the member and pressed dial."""
    n = max(0, snap.preview_requests)
    return PacingDecision(n, f"preview: {n} agent(s) pressed dial")


def progressive(snap: PacingSnapshot) -> PacingDecision:
    """One call per free agent: calls in flight and waiting never exceed free agents."""
    busy_lines = len(snap.inflight_elapsed_s) + snap.queued
    n = max(0, snap.agents_free - busy_lines)
    return PacingDecision(
        n,
        f"progressive: {snap.agents_free} agent(s) free, {busy_lines} call(s) already "
        f"ringing or waiting -> {n} new call(s)",
    )


def ivr(snap: PacingSnapshot) -> PacingDecision:
    """IVR-only campaigns: keep ``concurrency_cap`` lines busy, never more."""
    used = snap.ivr_active + len(snap.inflight_elapsed_s)
    n = max(0, snap.concurrency_cap - used)
    return PacingDecision(
        n,
        f"ivr: {snap.ivr_active} in the IVR + {len(snap.inflight_elapsed_s)} ringing of "
        f"cap {snap.concurrency_cap} -> {n} new call(s)",
    )


@dataclass(frozen=True)
class PredictiveConfig:
    """Parameters of the predictive pacer (defaults are what the benchmark runs; no per-scenario
    tuning). Rates are fractions of live answers."""

    target_fraction: float = 0.85
    """Aim the legal-window abandonment rate at this fraction of the cap."""
    hour_fraction: float = 0.7
    """Aim the last hour's abandonment rate at this fraction of 2 x cap."""
    floor_live: float = 150.0
    """Pseudo-count of live answers: early in a window one abandon does not swing the budget."""
    hour_floor_live: float = 80.0
    marginal_factor: float = 1.0
    """The last call placed is the riskiest: its allowed risk is this x the target rate."""
    budget_gain: float = 1.0
    """How fast unspent (or overspent) budget raises (lowers) the allowed risk."""
    hard_brake: float = 0.97
    """At this fraction of the cap (window) or of 2 x cap (last hour): no call beyond progressive."""
    patience_s: int = 2
    """The 2-second rule: a live answer must reach an agent within this many seconds."""
    step_s: int = 1
    """Resolution of the look-ahead (seconds between the instants checked)."""
    max_calls_per_decision: int = 200
    supply_margin: float = 1.0
    """Hard guard: expected agent-bound answers never exceed expected agents free + this."""
    warmup_attempts: int = 100
    """Dial progressively until this many attempts have been measured (no data, no risk)."""
    calibration_half_life_s: float = 3600.0
    """Memory of the observed / predicted abandons ratio that corrects the model's bias."""
    calibration_prior: float = 3.0
    """Pseudo-abandons predicted behind the calibration ratio (its weight)."""
    calibration_start: float = 0.4
    """Prior observed / predicted ratio. The model over-predicts abandons (its overflow
    persists to the horizon); starting at 0.4 instead of 1 shortens the over-cautious first
    hour (small team: 76.7 % -> 78.6 % of the limit over 5 seeds, worst hour 5.6 %)."""


def _eplus(mu: float, var: float) -> float:
    """E[max(X, 0)] for X ~ Normal(mu, var)."""
    if var <= 1e-12:
        return mu if mu > 0.0 else 0.0
    sd = math.sqrt(var)
    z = mu / sd
    if z < -7.0:
        return 0.0
    return sd * _INV_SQRT_2PI * math.exp(-0.5 * z * z) + mu * 0.5 * (1.0 + math.erf(z / _SQRT2))


class PredictivePacer:
    """Places calls ahead of agents becoming free, holding the abandonment cap.

    At each decision epoch it forecasts, for every look-ahead second ``k`` up to the horizon,
    the agents free by ``k + 2`` (free now, plus each agent in wrap-up or on a call finishing,
    from the measured duration distributions conditioned on how long they have lasted) and the
    calls that will need an agent by ``k`` (each call in flight, from the measured reach rate and
    ring-time distribution conditioned on how long it has rung, plus ``n`` new calls). The
    expected overflow (normal approximation) times the live share is the expected abandons; it
    picks the largest ``n`` whose expected abandons stay within the allowed rate of the
    expected live answers. The allowed rate is a budget controller: the target plus the unspent
    (or minus the overspent) budget of the legal window and of the last hour.

    A call is placed while its *marginal* expected abandons (how much it adds to the portfolio's)
    stay within the allowed rate times its chance of a live answer. The model's abandons are
    scaled by a calibration factor: abandons observed (the snapshot's legal-window count, as it
    grows) over abandons the model predicted for the calls it placed, both fading with
    ``calibration_half_life_s``. Those two sums are the pacer's only state.
    """

    def __init__(self, config: PredictiveConfig | None = None):
        self.config = config or PredictiveConfig()
        self._last_now: float | None = None
        self._last_ab = 0.0
        self._observed = 0.0
        self._predicted = 0.0
        self._changes = 0

    @property
    def calibration(self) -> float:
        a0 = self.config.calibration_prior
        return (self._observed + a0 * self.config.calibration_start) / (self._predicted + a0)

    def _age(self, snap: PacingSnapshot) -> None:
        """Fold the abandons counted since the last decision into the observed sum; both sums
        fade with ``calibration_half_life_s``."""
        ab = snap.abandons.window_abandoned
        if self._last_now is not None:
            dt = max(0.0, snap.now_s - self._last_now)
            decay = 0.5 ** (dt / self.config.calibration_half_life_s)
            self._observed = self._observed * decay + max(0.0, ab - self._last_ab)
            self._predicted *= decay
        self._last_now = snap.now_s
        self._last_ab = ab

    def allowed_rate(self, snap: PacingSnapshot) -> tuple[float, str]:
        cfg = self.config
        ab = snap.abandons
        cap = ab.cap
        target_w = cfg.target_fraction * cap
        rho_w = cfg.marginal_factor * target_w + cfg.budget_gain * (
            target_w * ab.window_live - ab.window_abandoned
        ) / max(ab.window_live, cfg.floor_live)
        target_h = cfg.hour_fraction * 2.0 * cap
        rho_h = cfg.marginal_factor * target_h + cfg.budget_gain * (
            target_h * ab.hour_live - ab.hour_abandoned
        ) / max(ab.hour_live, cfg.hour_floor_live)
        rho = max(0.0, min(rho_w, rho_h, 4.0 * cap))
        if ab.window_live > 0 and ab.window_rate >= cfg.hard_brake * cap:
            rho = 0.0  # over (or at) the cap: progressive until back under
        if ab.hour_live >= cfg.hour_floor_live / 2 and ab.hour_rate >= cfg.hard_brake * 2 * cap:
            rho = 0.0
        why = (
            f"window {ab.window_rate:.1%} of {ab.window_live:.0f} live, last hour "
            f"{ab.hour_rate:.1%} of {ab.hour_live:.0f}, cap {cap:.0%} -> allowed {rho:.2%}"
        )
        return rho, why

    def decide(self, snap: PacingSnapshot) -> PacingDecision:
        model = snap.model
        if model is None:
            d = progressive(snap)
            return PacingDecision(d.calls, "predictive (no model yet) -> " + d.reason)
        cfg = self.config
        if model.changes != self._changes:
            # The list changed (a change point in its answer rate or live share): the model's
            # bias measured on the old list does not carry over (on a 0.05 -> 0.35 jump the old
            # ratio, x0.22, let the pacer drop a call in six for a quarter of an hour), so the
            # calibration starts over from its prior and learns the new list's own abandons.
            # Only ever towards caution: a ratio above the prior (the model under-predicted, as
            # on small teams) is kept, so a false alarm never makes the pacer bolder.
            self._changes = model.changes
            if self.calibration < cfg.calibration_start:
                self._observed = self._predicted = 0.0
        self._age(snap)
        floor = progressive(snap).calls
        if model.attempts_observed < cfg.warmup_attempts:
            return PacingDecision(
                floor,
                f"predictive warm-up ({model.attempts_observed}/{cfg.warmup_attempts} attempts "
                f"measured): progressive, {floor} call(s)",
            )
        rho, why = self.allowed_rate(snap)
        c = self.calibration
        why += f", model calibration x{c:.2f}"
        f = _Forecast(model, snap, cfg.patience_s, cfg.step_s)
        n = floor
        base = f.abandons(n)
        raw = base
        live_per_call = f.live(1) - f.live(0)
        limit_supply = f.supply_at_horizon + cfg.supply_margin
        marginal = 0.0
        while n - floor < cfg.max_calls_per_decision:
            cand = n + 1
            if f.reach(cand) > limit_supply:
                break
            a = f.abandons(cand)
            marginal = c * (a - raw)
            if rho <= 0.0 or marginal >= rho * live_per_call:
                break
            n, raw = cand, a
        self._predicted += raw - base
        e_ab, e_live = c * raw, f.live(n)
        reason = (
            f"predictive: {n} call(s): {snap.agents_free} free, {f.supply_at_horizon:.1f} "
            f"expected free within {model.horizon_s}s; {len(snap.inflight_elapsed_s)} in flight "
            f"+ {snap.queued} waiting, expected to need {f.reach(n):.1f} agents; expected "
            f"abandons {e_ab:.2f} of {e_live:.1f} live; next call's abandon risk "
            f"{marginal:.3f} vs allowed {rho * live_per_call:.3f} ({why})"
        )
        if n == floor:
            reason += f"; no call beyond progressive ({floor})"
        return PacingDecision(
            n,
            reason,
            expected_abandons=e_ab,
            expected_live=e_live,
            expected_reach=f.reach(n),
            expected_supply=f.supply_at_horizon,
        )


class _Forecast:
    """Per-epoch forecast arrays over look-ahead seconds ``k`` (every ``step`` s up to ``H``)."""

    def __init__(self, model: PacingModel, snap: PacingSnapshot, patience: int, step: int):
        h = model.horizon_s
        self.h = h
        self.live_share = model.live_fraction
        free = snap.agents_free
        # Supply: agents free by k (index k), as mean and variance (independent Bernoullis).
        wf, wv, tf, tv = model.wrap_free, model.wrap_var, model.talk_free, model.talk_var
        nw, nt = len(wf) - 1, len(tf) - 1
        wi = [min(int(e), nw) for e in snap.wrap_elapsed_s]
        ti = [min(int(e), nt) for e in snap.talk_elapsed_s]
        if wi or ti:
            rows = [wf[i] for i in wi] + [tf[i] for i in ti]
            vrows = [wv[i] for i in wi] + [tv[i] for i in ti]
            sup_mu: list[float] = [free + x for x in map(sum, zip(*rows, strict=False))]
            sup_var: list[float] = list(map(sum, zip(*vrows, strict=False)))
        else:
            sup_mu = [float(free)] * (h + 1)
            sup_var = [0.0] * (h + 1)
        # Demand: calls needing an agent by k (queued now, plus each call in flight).
        rr, rv = model.reach_rows, model.reach_var
        nr = len(rr) - 1
        ri = [min(int(e), nr) for e in snap.inflight_elapsed_s]
        queued = snap.queued
        if ri:
            dem_mu: list[float] = [
                queued + x for x in map(sum, zip(*[rr[i] for i in ri], strict=False))
            ]
            dem_var: list[float] = list(map(sum, zip(*[rv[i] for i in ri], strict=False)))
        else:
            dem_mu = [float(queued)] * (h + 1)
            dem_var = [0.0] * (h + 1)
        q0 = rr[0]
        # A machine taken by an agent frees them again after the machine handling time.
        shift = patience - round(model.machine_handle_s)
        m_share = 1.0 - self.live_share
        ks = range(0, h - patience + 1, step)
        rel = [m_share * dem_mu[min(k + shift, h)] if k + shift >= 0 else 0.0 for k in ks]
        rel0 = [m_share * q0[min(k + shift, h)] if k + shift >= 0 else 0.0 for k in ks]
        self.base_mu = [dem_mu[k] - sup_mu[k + patience] - r for k, r in zip(ks, rel, strict=True)]
        self.base_var = [dem_var[k] + sup_var[k + patience] for k in ks]
        self.new_mu = [q0[k] - r for k, r in zip(ks, rel0, strict=True)]
        self.new_var = [q0[k] * (1.0 - q0[k]) for k in ks]
        self.supply_at_horizon = sup_mu[h]
        self.reach_inflight = dem_mu[h]
        self.q_end = q0[h]
        # Overflow-seconds / patience: each abandoned call is about ``patience`` s of overflow.
        self.scale = step / patience

    def abandons(self, n: int) -> float:
        """Expected live abandons ~ live share x expected overflow-seconds / patience."""
        total = 0.0
        sqrt, exp, erf = math.sqrt, math.exp, math.erf
        for bm, bv, nm, nv in zip(
            self.base_mu, self.base_var, self.new_mu, self.new_var, strict=True
        ):
            mu = bm + n * nm
            var = bv + n * nv
            if var <= 1e-12:
                v = mu if mu > 0.0 else 0.0
            else:
                sd = sqrt(var)
                z = mu / sd
                if z < -7.0:
                    continue
                v = sd * _INV_SQRT_2PI * exp(-0.5 * z * z) + mu * 0.5 * (1.0 + erf(z / _SQRT2))
            total += v
        return self.live_share * total * self.scale

    def reach(self, n: int) -> float:
        return self.reach_inflight + n * self.q_end

    def live(self, n: int) -> float:
        return self.live_share * self.reach(n)


def decide(
    mode: DialMode, snap: PacingSnapshot, pacer: PredictivePacer | None = None
) -> PacingDecision:
    """Dispatch on the campaign's mode."""
    if mode is DialMode.PREVIEW:
        return preview(snap)
    if mode is DialMode.PROGRESSIVE:
        return progressive(snap)
    if mode is DialMode.IVR:
        return ivr(snap)
    return (pacer or PredictivePacer()).decide(snap)
