"""Online estimators with priors: what the dialer *measured*, never the simulator's truth.

The runner (or the simulator acting as one) feeds outcomes in as they happen:

* :meth:`OutcomeEstimator.record_attempt` when a placed call is settled (it reached the agent
  queue after ``reach_delay_s`` seconds, or it did not: no answer, busy, hung up by AMD);
* :meth:`OutcomeEstimator.record_connection` when an agent dispositions a connected call as a
  live person or a machine;
* :meth:`OutcomeEstimator.record_agent_cycle` when an agent becomes ready again (talk and
  wrap-up durations of that call).

:meth:`OutcomeEstimator.model` returns an immutable :class:`PacingModel`: lookup tables on a
1-second grid that the predictive pacer reads. Tables are rebuilt only after enough new
observations, so a pacing decision never pays for re-estimation.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, replace
from statistics import NormalDist


class RateEstimator:
    """A proportion with a Beta prior and exponential forgetting (adapts to drift).

    ``prior_mean``/``prior_weight`` act as ``prior_weight`` pseudo-observations; ``memory`` is the
    effective number of recent observations kept (older ones fade geometrically).
    """

    def __init__(self, prior_mean: float, prior_weight: float = 20.0, memory: float = 2000.0):
        self._prior_a = prior_mean * prior_weight
        self._prior_b = (1.0 - prior_mean) * prior_weight
        self._keep = 1.0 - 1.0 / memory
        self._a = 0.0
        self._b = 0.0
        self.count = 0

    def update(self, success: bool) -> None:
        self._a = self._a * self._keep + (1.0 if success else 0.0)
        self._b = self._b * self._keep + (0.0 if success else 1.0)
        self.count += 1

    @property
    def mean(self) -> float:
        a = self._a + self._prior_a
        return a / (a + self._b + self._prior_b)

    def restart_counts(self, successes: float, failures: float, prior_weight: float = 2.0) -> None:
        """Forget this memory and continue from these observations (a change point), with a
        light prior at their own mean (so a short run is not taken for certain)."""
        n = successes + failures
        mean = (successes + 1.0) / (n + 2.0)
        self._a, self._b = successes, failures
        self._prior_a, self._prior_b = mean * prior_weight, (1.0 - mean) * prior_weight


class ShiftingRate:
    """A proportion that may jump (the evening answer rate): a long memory (steady, precise),
    a short one (quick), and a change-point detector; ``mean`` is the more cautious of the two
    estimates (``cautious_high``: the higher, e.g. the share of calls that will need an agent).

    The detector is a two-sided Bernoulli CUSUM against the long estimate ``p``: the
    log-likelihood ratio of "the odds are now ``jump`` times higher" (or lower) is
    summed over the observations and reset at 0; when a sum passes ``threshold`` the rate has
    changed. Both memories then restart from the observations since that sum last left 0 (the
    new level's own evidence), so the old level is forgotten at once instead of fading over
    thousands of calls. A rise of the answer rate from 0.17 to 0.47 is detected within about
    40 calls.

    ``uncertain`` is true while the estimate is young or a change was seen within the last
    ``settle`` observations: counts weighted by this share should then assume the worst.
    """

    def __init__(
        self,
        prior_mean: float,
        prior_weight: float = 20.0,
        *,
        memory: float = 2000.0,
        short_memory: float = 150.0,
        jump: float = 2.0,
        threshold: float = 7.0,
        settle: int = 300,
        cautious_high: bool = True,
        margin: float = 1.0,
    ):
        self.long = RateEstimator(prior_mean, prior_weight, memory)
        self.short = RateEstimator(prior_mean, prior_weight / 4.0, short_memory)
        self._short_memory = short_memory
        self._jump = jump
        self._threshold = threshold
        self._settle = settle
        self._high = cautious_high
        self._margin = margin
        self.changes = 0
        self._since_change = 0
        self.count = 0
        # CUSUM sums, and the observations (successes, n) since each last left 0
        self._up = 0.0
        self._down = 0.0
        self._up_run = (0, 0)
        self._down_run = (0, 0)
        self._recent: deque[int] = deque(maxlen=int(short_memory))

    def update(self, success: bool) -> None:
        p = min(0.98, max(0.02, self.long.mean))
        odds = p / (1.0 - p)
        hi = odds * self._jump / (1.0 + odds * self._jump)
        lo = odds / self._jump / (1.0 + odds / self._jump)
        if success:
            inc_up, inc_down = math.log(hi / p), math.log(lo / p)
        else:
            inc_up, inc_down = math.log((1.0 - hi) / (1.0 - p)), math.log((1.0 - lo) / (1.0 - p))
        x = 1 if success else 0
        self._up, self._up_run = _cusum_step(self._up, inc_up, self._up_run, x)
        self._down, self._down_run = _cusum_step(self._down, inc_down, self._down_run, x)
        self._recent.append(x)
        self.long.update(success)
        self.short.update(success)
        self.count += 1
        self._since_change += 1
        if self._up > self._threshold:
            self._restart(self._up_run, (self.long, self.short))
        elif self._down > self._threshold:
            # a fall: the short memory keeps the higher level until it fades (cautious)
            self._restart(self._down_run, (self.long,))

    def _restart(self, run: tuple[int, int], estimators: tuple[RateEstimator, ...]) -> None:
        successes, n = _change_point(list(self._recent)[-max(run[1], 1) :], self.long.mean)
        for est in estimators:
            est.restart_counts(float(successes), float(n - successes))
        self.changes += 1
        self._since_change = 0
        self._up = self._down = 0.0
        self._up_run = self._down_run = (0, 0)

    @property
    def mean(self) -> float:
        """The more cautious of the long estimate and the short one, the short one taken
        ``margin`` of its standard errors towards the long (its noise alone would otherwise make
        the maximum biased: a steady list would be dialled as if it answered more)."""
        a, b = self.long.mean, self.short.mean
        if self._margin > 0.0:
            n = min(self.short.count, self._short_memory) + 1.0
            se = self._margin * math.sqrt(max(b * (1.0 - b), 1e-4) / (2.0 * n))
            b = b - se if self._high else b + se
        return max(a, b) if self._high else min(a, b)

    @property
    def uncertain(self) -> bool:
        return self.count < self._short_memory or self._since_change < self._settle

    def upper(self, z: float = 2.0) -> float:
        """An upper bound of the share (the higher estimate + z standard errors)."""
        p = max(self.long.mean, self.short.mean)
        n = min(self.short.count, self._short_memory) + 1.0
        return min(1.0, p + z * math.sqrt(max(p * (1.0 - p), 1e-4) / n))


def _change_point(xs: list[int], p0: float) -> tuple[int, int]:
    """(successes, n) of the suffix of ``xs`` most unlike rate ``p0`` (the maximum-likelihood
    change point: the suffix with the largest log-likelihood ratio, at least 5 observations)."""
    p0 = min(0.999, max(0.001, p0))
    best, best_run = -1.0, (sum(xs), len(xs))
    succ = 0
    for n, x in enumerate(reversed(xs), 1):
        succ += x
        if n < 5:
            continue
        ph = succ / n
        llr = 0.0
        if ph > 0.0:
            llr += succ * math.log(ph / p0)
        if ph < 1.0:
            llr += (n - succ) * math.log((1.0 - ph) / (1.0 - p0))
        if llr > best:
            best, best_run = llr, (succ, n)
    return best_run


def _cusum_step(
    total: float, inc: float, run: tuple[int, int], x: int
) -> tuple[float, tuple[int, int]]:
    total += inc
    if total <= 0.0:
        return 0.0, (0, 0)
    return total, (run[0] + x, run[1] + 1)


def lognormal_quantiles(mean: float, sd: float, n: int) -> list[float]:
    """``n`` evenly spaced quantiles of a lognormal with this mean and sd (prior pseudo-samples)."""
    sigma2 = math.log(1.0 + (sd * sd) / (mean * mean))
    mu = math.log(mean) - sigma2 / 2.0
    z = NormalDist()
    return [math.exp(mu + math.sqrt(sigma2) * z.inv_cdf((i + 0.5) / n)) for i in range(n)]


@dataclass(frozen=True)
class DurationPrior:
    """A prior guess of a duration distribution, worth ``weight`` pseudo-samples."""

    mean_s: float
    sd_s: float
    weight: int = 30


class DurationSample:
    """A sliding window of observed durations, seeded with prior pseudo-samples."""

    def __init__(self, prior: DurationPrior, window: int = 1500):
        self._values: deque[float] = deque(
            lognormal_quantiles(prior.mean_s, prior.sd_s, prior.weight), maxlen=window
        )
        self.observed = 0

    def add(self, value: float) -> None:
        self._values.append(max(0.0, value))
        self.observed += 1

    def values(self) -> list[float]:
        return list(self._values)

    def ecdf_grid(self, upto_s: int) -> list[float]:
        """``F[t] = P(X <= t)`` for integer ``t`` in ``0..upto_s``."""
        vals = sorted(self._values)
        n = len(vals)
        return [bisect.bisect_right(vals, float(t)) / n for t in range(upto_s + 1)]


@dataclass(frozen=True)
class PacingModel:
    """What the dialer believes, on a 1-second grid (read-only; built by :class:`OutcomeEstimator`).

    ``horizon_s`` is the look-ahead ``H``: the longest a call placed now can take to need an agent
    (ring timeout + AMD delay + 2-second rule), rounded up. All ``*_free`` rows have ``H + 1``
    entries indexed by look-ahead seconds ``k = 0..H``.
    """

    horizon_s: int
    reach_rate: float
    """P(a placed call ends up in the agent queue): live answers and machines passed on."""
    live_fraction: float
    """Share of live people among calls that reach an agent (agent dispositions)."""
    reach_cdf: tuple[float, ...]
    """``reach_cdf[t]`` = P(reach delay <= t s | the call reaches the queue), t = 0..ring_cap."""
    wrap_free: tuple[tuple[float, ...], ...]
    """``wrap_free[e][k]`` = P(wrap-up ends within k s | it has lasted e s)."""
    talk_free: tuple[tuple[float, ...], ...]
    """``talk_free[e][k]`` = P(agent ready within k s | on a call for e s) (talk + wrap-up)."""
    wrap_var: tuple[tuple[float, ...], ...]
    """``p (1 - p)`` of ``wrap_free`` (Bernoulli variances, precomputed for speed)."""
    talk_var: tuple[tuple[float, ...], ...]
    reach_rows: tuple[tuple[float, ...], ...]
    """``reach_rows[e][k]`` = P(an in-flight call unsettled after e s reaches the queue within k s)."""
    reach_var: tuple[tuple[float, ...], ...]
    mean_talk_s: float
    mean_wrap_s: float
    machine_handle_s: float
    """Mean time an agent spends on a machine that reached them (AMD off or missed)."""
    attempts_observed: int = 0
    """Settled attempts measured so far (the pacer stays progressive while this is small)."""
    changes: int = 0
    """Change points detected so far in the list's rates (reach rate and live share): the
    pacer forgets what it learned about the old list (its calibration) when this grows."""

    def inflight_reach(self, elapsed_s: float) -> tuple[float, ...]:
        """P(this in-flight call reaches the queue within k s), k = 0..H, given ``elapsed_s``."""
        rows = self.reach_rows
        return rows[min(max(0, int(elapsed_s)), len(rows) - 1)]

    def wrap_row(self, elapsed_s: float) -> tuple[float, ...]:
        rows = self.wrap_free
        return rows[min(int(elapsed_s), len(rows) - 1)]

    def talk_row(self, elapsed_s: float) -> tuple[float, ...]:
        rows = self.talk_free
        return rows[min(int(elapsed_s), len(rows) - 1)]

    def index(self, rows: tuple[tuple[float, ...], ...], elapsed_s: float) -> int:
        return min(max(0, int(elapsed_s)), len(rows) - 1)


@dataclass(frozen=True)
class EstimatorPriors:
    """Generic priors (not any scenario's truth): overwhelmed by data within minutes."""

    reach_rate: float = 0.3
    live_fraction: float = 0.7
    ring: DurationPrior = DurationPrior(12.0, 6.0)
    talk: DurationPrior = DurationPrior(150.0, 100.0)
    wrap: DurationPrior = DurationPrior(25.0, 15.0)


class OutcomeEstimator:
    """Online estimates of answer, machine and duration statistics for one campaign."""

    def __init__(
        self,
        horizon_s: int,
        priors: EstimatorPriors | None = None,
        *,
        max_elapsed_s: int = 1800,
        rebuild_fraction: float = 0.1,
    ):
        pri = priors or EstimatorPriors()
        self.horizon_s = horizon_s
        self._max_e = max_elapsed_s
        self._rebuild_fraction = rebuild_fraction
        self.reach = ShiftingRate(pri.reach_rate, 20.0, memory=3000.0, short_memory=150.0)
        self.live = ShiftingRate(pri.live_fraction, 20.0, memory=2000.0, short_memory=100.0)
        self._reach_delay = DurationSample(pri.ring, window=1500)
        wrap_prior = lognormal_quantiles(pri.wrap.mean_s, pri.wrap.sd_s, pri.wrap.weight)
        talk_prior = lognormal_quantiles(pri.talk.mean_s, pri.talk.sd_s, pri.talk.weight)
        self._cycles: deque[tuple[float, float]] = deque(
            zip(talk_prior, wrap_prior, strict=True), maxlen=1500
        )
        self._machine_handle: deque[float] = deque([8.0] * 5, maxlen=200)
        self._new_cycles = 0
        self._new_attempts = 0
        self._model: PacingModel | None = None
        self._rates_built = (0.0, 0.0)

    # -- observations -------------------------------------------------------------------------
    def record_attempt(self, *, reached_queue: bool, reach_delay_s: float | None = None) -> None:
        self.reach.update(reached_queue)
        if reached_queue and reach_delay_s is not None:
            self._reach_delay.add(reach_delay_s)
        self._new_attempts += 1

    def record_connection(self, *, live: bool, machine_handle_s: float | None = None) -> None:
        """An agent dispositioned a connected call: a live person, or a machine (and how long
        the agent spent on it; a machine's time is not an agent cycle)."""
        self.live.update(live)
        if not live and machine_handle_s is not None:
            self._machine_handle.append(machine_handle_s)

    def record_agent_cycle(self, talk_s: float, wrap_s: float) -> None:
        self._cycles.append((max(0.0, talk_s), max(0.0, wrap_s)))
        self._new_cycles += 1

    # -- model --------------------------------------------------------------------------------
    def model(self) -> PacingModel:
        """The current model. Rebuilt after ``rebuild_fraction`` x window new agent cycles (at
        least 20) or 200 settled attempts, so most decisions reuse the tables; when only the
        reach rate or live share moved (by 2 % relative), just the rows that depend on them
        are recomputed: a shift in the list reaches the pacer within a few calls."""
        threshold = max(20, int(self._rebuild_fraction * len(self._cycles)))
        if self._model is None or self._new_cycles >= threshold or self._new_attempts >= 200:
            self._model = self._build()
            self._new_cycles = 0
            self._new_attempts = 0
            self._rates_built = (self.reach.mean, self.live.mean)
        else:
            reach, live = self.reach.mean, self.live.mean
            r0, l0 = self._rates_built
            moved = abs(reach - r0) > 0.02 * r0 or abs(live - l0) > 0.02 * l0
            if moved or self._model.changes != self.reach.changes + self.live.changes:
                rows = _reach_rows(self._model.reach_cdf, reach, self.horizon_s)
                self._model = replace(
                    self._model,
                    reach_rate=reach,
                    live_fraction=live,
                    reach_rows=rows,
                    reach_var=_var_rows(rows),
                    attempts_observed=self.reach.count,
                    changes=self.reach.changes + self.live.changes,
                )
                self._rates_built = (reach, live)
        return self._model

    def _build(self) -> PacingModel:
        h = self.horizon_s
        ring_cap = h
        reach_cdf = tuple(self._reach_delay.ecdf_grid(ring_cap))
        reach_rows = _reach_rows(reach_cdf, self.reach.mean, h)
        cycles = list(self._cycles)
        wraps = sorted(w for _, w in cycles)
        n = len(cycles)
        max_w = int(min(self._max_e, max(wraps) + 1)) if wraps else 1
        wrap_f = [bisect.bisect_right(wraps, float(t)) / n for t in range(max_w + h + 2)]
        wrap_rows: list[tuple[float, ...]] = []
        for e in range(max_w + 1):
            surv = 1.0 - wrap_f[e]
            if surv <= 1e-9:
                wrap_rows.append(tuple(0.0 for _ in range(h + 1)))
                continue
            wrap_rows.append(tuple((wrap_f[e + k] - wrap_f[e]) / surv for k in range(h + 1)))
        wrap_rows.append(tuple(0.0 for _ in range(h + 1)))  # beyond every sample: unknown
        talk_rows = self._talk_rows(cycles, h)
        wrap_t = tuple(wrap_rows)
        mean_talk = sum(t for t, _ in cycles) / n
        mean_wrap = sum(w for _, w in cycles) / n
        machines = list(self._machine_handle)
        machine_handle = sum(machines) / len(machines)
        return PacingModel(
            horizon_s=h,
            reach_rate=self.reach.mean,
            live_fraction=self.live.mean,
            reach_cdf=reach_cdf,
            wrap_free=wrap_t,
            talk_free=talk_rows,
            wrap_var=_var_rows(wrap_t),
            talk_var=_var_rows(talk_rows),
            reach_rows=reach_rows,
            reach_var=_var_rows(reach_rows),
            mean_talk_s=mean_talk,
            mean_wrap_s=mean_wrap,
            machine_handle_s=machine_handle,
            attempts_observed=self.reach.count,
            changes=self.reach.changes + self.live.changes,
        )

    def _talk_rows(
        self, cycles: list[tuple[float, float]], h: int
    ) -> tuple[tuple[float, ...], ...]:
        """Empirical P(talk + wrap - e <= k | talk > e), from (talk, wrap) pairs kept together."""
        max_t = int(min(self._max_e, max(t for t, _ in cycles) + 1))
        size = max_t + 1
        survivors = [0] * (size + 1)  # survivors[e] = #{talk > e}
        # hits[e][k]: #{talk > e and talk + wrap <= e + k}; filled per sample over e in [talk-h-1, talk)
        hits = [[0] * (h + 1) for _ in range(size)]
        for talk, wrap in cycles:
            top = min(math.ceil(talk) - 1, size - 1)  # largest integer e with e < talk
            if top >= 0:
                survivors[0] += 1
                if top + 1 <= size:
                    survivors[top + 1] -= 1
            total = talk + wrap
            lo = max(0, math.floor(total) - h)
            for e in range(lo, top + 1):
                k = max(0, math.ceil(total - e))
                if k <= h:
                    row = hits[e]
                    row[k] += 1
        rows: list[tuple[float, ...]] = []
        alive = 0
        for e in range(size):
            alive += survivors[e]
            if alive <= 0:
                rows.append(tuple(0.0 for _ in range(h + 1)))
                continue
            acc = 0
            row_hits = hits[e]
            out = []
            for k in range(h + 1):
                acc += row_hits[k]
                out.append(acc / alive)
            rows.append(tuple(out))
        rows.append(tuple(0.0 for _ in range(h + 1)))  # longer than every sample: unknown
        return tuple(rows)


def _reach_rows(cdf: tuple[float, ...], p: float, h: int) -> tuple[tuple[float, ...], ...]:
    last = len(cdf) - 1
    rows: list[tuple[float, ...]] = []
    for e in range(last + 1):
        g0 = cdf[e]
        denom = 1.0 - p * g0
        if denom <= 1e-9:
            rows.append(tuple(0.0 for _ in range(h + 1)))
            continue
        scale = p / denom
        rows.append(tuple(scale * (cdf[min(e + k, last)] - g0) for k in range(h + 1)))
    return tuple(rows)


def _var_rows(rows: tuple[tuple[float, ...], ...]) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(p * (1.0 - p) for p in row) for row in rows)
