"""The console's garbage-collector policy: no full collection in the middle of a screen pop.

Textual makes cyclic garbage on every repaint (each ``Strip`` caches itself), so CPython's
full collections come round every ~20 pops. Left to itself one lands mid-pop and walks the
whole heap (Textual, Rich, the screens: ~150k objects): a 100-150 ms stall, three times the
50 ms pop budget (``memberline bench console`` p99). So, once the console is up:

1. :func:`settle` collects, then freezes everything alive (``gc.freeze``): what lives as
   long as the app is never walked again, and full collections shrink to the garbage made
   since (~25k objects, 15-35 ms);
2. automatic full collections are switched off (generations 0 and 1 still run as usual:
   1-5 ms each), and :func:`collect_if_due` runs the full one at moments of our choosing:
   right after a pop has been painted (the agent is reading it; the next pop is seconds
   away) and from a slow timer, so a console that shows no pops still frees its garbage.

The app undoes all this when it closes (:func:`release`). Objects frozen at login and
dropped later (the login screen) are not collected: a one-off, bounded cost.
"""

from __future__ import annotations

import gc

FULL_EVERY = 10
"""Full collection once this many generation-1 collections have run (CPython's default)."""
_OFF = 1_000_000_000


def settle() -> tuple[int, int, int]:
    """Collect, freeze what is alive, and take full collections under our control.

    Returns the previous thresholds, for :func:`release`."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(previous[0], previous[1], _OFF)
    return previous


def release(previous: tuple[int, int, int]) -> None:
    """Undo :func:`settle` (the app is closing; its process may go on, as in tests)."""
    gc.set_threshold(*previous)
    gc.unfreeze()


def collect_if_due() -> bool:
    """Run a full collection if enough younger ones have run since the last; True if it ran."""
    if gc.isenabled() and gc.get_count()[2] >= FULL_EVERY:
        gc.collect()
        return True
    return False
