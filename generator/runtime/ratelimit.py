"""Log lines that cannot flood: the first few per reason and interval, then one count."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class RateLimitedLog:
    """`log(reason, message, *args)` writes at most `burst` lines per reason every `interval`
    seconds; what it held back is reported as one line when the next interval opens."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 10,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._burst = burst
        self._interval = interval
        self._clock = clock
        self._windows: dict[str, list[float]] = {}  # reason -> [window start, written, held]

    def log(
        self,
        level: int,
        reason: str,
        message: str,
        *args: object,
        extra: dict[str, object] | None = None,
    ) -> None:
        now = self._clock()
        window = self._windows.get(reason)
        if window is None or now - window[0] >= self._interval:
            if window is not None and window[2]:
                self._logger.log(
                    level,
                    "%d more %r message(s) not logged in the last %.0f s",
                    window[2],
                    reason,
                    now - window[0],
                )
            window = self._windows[reason] = [now, 0, 0]
        if window[1] < self._burst:
            window[1] += 1
            self._logger.log(level, message, *args, extra=extra)
        else:
            window[2] += 1
