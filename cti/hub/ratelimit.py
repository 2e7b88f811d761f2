"""Login failure rate limiting (pure; the clock is passed in).

A sliding window per key: at most a limit of failures within ``window_s``. Keys are
``agent:<code>`` and ``peer:<address>``, each kind with its own limit (``limits``, by the
part before the colon; ``limit`` for any other kind), so guessing one agent's password
from many addresses and guessing many agents' passwords from one address are both
stopped -- while one agent's typos lock only that agent, not every agent behind the same
SSH jump host (the address limit is the larger one). The table is bounded: keys whose
failures have all expired are dropped on the way.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping


class FailureLimiter:
    def __init__(
        self,
        limit: int = 5,
        window_s: float = 60.0,
        max_keys: int = 100_000,
        *,
        limits: Mapping[str, int] | None = None,
    ) -> None:
        self.limit = limit
        self.limits = dict(limits or {})
        self.window_s = window_s
        self.max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def limit_for(self, key: str) -> int:
        return self.limits.get(key.partition(":")[0], self.limit)

    def _live(self, key: str, now: float) -> deque[float] | None:
        q = self._failures.get(key)
        if q is None:
            return None
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            del self._failures[key]
            return None
        return q

    def blocking(self, keys: list[str], now: float) -> str | None:
        """The first key that has used up its failures in the current window, or None."""
        for key in keys:
            q = self._live(key, now)
            if q is not None and len(q) >= self.limit_for(key):
                return key
        return None

    def blocked(self, keys: list[str], now: float) -> bool:
        """True when any key has used up its failures in the current window."""
        return self.blocking(keys, now) is not None

    def retry_after(self, keys: list[str], now: float) -> float:
        """Seconds until every key is below its limit again (0 when not blocked)."""
        wait = 0.0
        for key in keys:
            q = self._live(key, now)
            limit = self.limit_for(key)
            if q is not None and len(q) >= limit:
                wait = max(wait, q[len(q) - limit] + self.window_s - now)
        return wait

    def fail(self, keys: list[str], now: float) -> None:
        if len(self._failures) >= self.max_keys:
            self._prune(now)
        for key in keys:
            q = self._failures.setdefault(key, deque())
            q.append(now)
            while len(q) > self.limit_for(key):
                q.popleft()

    def succeed(self, agent_key: str) -> None:
        """A successful login clears that agent's failures (not the peer's)."""
        self._failures.pop(agent_key, None)

    def _prune(self, now: float) -> None:
        for key in list(self._failures):
            self._live(key, now)
        if len(self._failures) >= self.max_keys:
            # Still full of live keys: forget the oldest half rather than grow without bound.
            oldest = sorted(self._failures, key=lambda k: self._failures[k][-1])
            for key in oldest[: len(oldest) // 2]:
                del self._failures[key]

    def __len__(self) -> int:
        return len(self._failures)
