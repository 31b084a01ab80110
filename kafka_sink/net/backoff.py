"""How long a connection waits before the next attempt after a failure.

Theory of operation
-------------------
The first retry waits ``reconnect_backoff``; each failure in a row doubles
the wait, up to ``reconnect_backoff_max``; a connection that becomes ready
starts again from the bottom. Every wait is spread by +-20 % at random, so
that clients that lost a broker at the same moment do not all come back at
the same moment. A refused authentication is different: the same settings
would be refused again at once, so it waits the longest back-off (less up to
20 %, never more than the maximum). The policy reads no clock: it says how
long, the client adds it to its own clock.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["JITTER", "Backoff"]

#: The spread of every wait, as a fraction of it.
JITTER = 0.2


class Backoff:
    """Exponential back-off with jitter between ``base`` and ``maximum`` seconds."""

    __slots__ = ("_random", "base", "maximum")

    def __init__(
        self, base: float, maximum: float, *, uniform: Callable[[], float] = random.random
    ) -> None:
        self.base = base
        self.maximum = maximum
        self._random = uniform

    def delay(self, failures: int) -> float:
        """The wait after the ``failures``-th failure in a row (1: the first)."""
        delay = self.base * 2.0 ** min(failures - 1, 32)
        delay = min(delay, self.maximum) * (1.0 + JITTER * (2.0 * self._random() - 1.0))
        return min(delay, self.maximum)

    def longest(self) -> float:
        """The wait after a refused authentication: the maximum, less up to 20 %."""
        return self.maximum * (1.0 - JITTER * self._random())
