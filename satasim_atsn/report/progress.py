"""A small progress reporter for long simulations: images done, simulated FPS so far, ETA.

It writes one updating line to stderr only when stderr is a terminal and ``quiet`` is off, so
piped runs and ``--quiet`` stay silent. Updates are throttled to a few per second.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Reports simulation progress on a terminal; silent otherwise."""

    def __init__(self, clock_hz: float, quiet: bool = False, stream: TextIO | None = None, interval_s: float = 0.5):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = not quiet and bool(getattr(self.stream, "isatty", lambda: False)())
        self.clock_hz = float(clock_hz)
        self.interval_s = interval_s
        self.total = 0
        self._t0 = 0.0
        self._last = 0.0
        self._shown = False

    def start(self, total_images: int) -> None:
        """Begin a run of ``total_images`` images."""
        self.total = int(total_images)
        self._t0 = self._last = time.monotonic()

    def line(self, done: int, cycles: int, now: float) -> str:
        """The progress line for ``done`` images finished by simulated cycle ``cycles``."""
        fps = done / (cycles / self.clock_hz) if cycles > 0 else 0.0
        elapsed = now - self._t0
        eta = elapsed / done * (self.total - done) if done else float("nan")
        eta_text = f"{eta:6.0f} s" if done else "     ? s"
        return f"simulated {done}/{self.total} images | {fps:10.1f} FPS so far | ETA {eta_text}"

    def update(self, done: int, cycles: int) -> None:
        """Report ``done`` images finished by simulated cycle ``cycles`` (throttled)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < self.interval_s and done < self.total:
            return
        self._last = now
        self.stream.write("\r" + self.line(done, cycles, now))
        self.stream.flush()
        self._shown = True

    def finish(self) -> None:
        """End the line (if anything was shown)."""
        if self.enabled and self._shown:
            self.stream.write("\n")
            self.stream.flush()
