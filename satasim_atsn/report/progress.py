"""Progress bars (tqdm) for long commands: images done, simulated FPS so far, ETA.

A bar is drawn on stderr only when stderr is a terminal and ``--quiet`` is off, so piped runs,
CI logs and ``--quiet`` stay silent and stdout carries nothing but results.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm


def on_terminal(stream: TextIO | None = None) -> bool:
    """True if ``stream`` (default stderr) is an interactive terminal."""
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_bar(total: int | None, *, desc: str, unit: str, quiet: bool = False,
                 stream: TextIO | None = None, interval_s: float = 0.5, smoothing: float = 0.3) -> tqdm:
    """A tqdm bar on ``stream`` (default stderr), disabled when quiet or not on a terminal."""
    stream = stream if stream is not None else sys.stderr
    disable = quiet or not on_terminal(stream)
    width, height = (None, None) if disable else _size(stream)
    return tqdm(total=total, desc=desc, unit=unit, file=stream, disable=disable, mininterval=interval_s, miniters=1,
                dynamic_ncols=width is None, ncols=width, nrows=height, leave=False, smoothing=smoothing)


def time_from(bar: tqdm, done: int) -> None:
    """Show ``done`` and start the bar's rate and ETA there: what came before (numba's compilation, the mapping,
    the first chunk's set-up: 12 s before the first of 256 images made an ETA of 55 minutes for a 40 s run) is
    not a rate the rest will run at. The ETA reads '?' until the next update. Needs ``smoothing=0`` (an average
    since the start, which is now here)."""
    if bar.disable:
        return
    bar.n = bar.initial = bar.last_print_n = int(done)
    bar.start_t = bar.last_print_t = bar._time()
    bar.refresh()


def _size(stream: TextIO) -> tuple[int | None, int | None]:
    """(None, None) when the terminal reports its size (tqdm follows it as it changes), else a fixed size: the
    columns it reports or 100, the rows or 24.

    An unsized pty (``script``, some CI runners) reports 0 rows; tqdm, following it, hid the bar as if it were
    below the last of 0 rows."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return 100, 24
    if size.columns > 0 and size.lines > 0:
        return None, None
    return size.columns or 100, size.lines or 24


def paced(bar: tqdm) -> Callable[[int], None]:
    """``bar.update`` whose first call starts the rate and ETA (time_from): the first batch of a forward
    carries numba's compilation."""
    started = [False]

    def advance(n: int) -> None:
        if started[0] or bar.disable:
            bar.update(n)
            return
        started[0] = True
        time_from(bar, bar.n + int(n))

    return advance


class Progress:
    """The engine's progress hook: ``start(total)``, ``update(done, cycles)``, ``finish()``.

    Shows images done, the simulated FPS so far (images / simulated seconds of the makespan so far)
    and tqdm's ETA from wall time.
    """

    def __init__(self, clock_hz: float, quiet: bool = False, stream: TextIO | None = None,
                 desc: str = "simulating", interval_s: float = 0.5) -> None:
        self.clock_hz = float(clock_hz)
        self.interval_s = interval_s
        self.quiet = quiet
        self.stream = stream
        self.desc = desc
        self.enabled = not quiet and on_terminal(stream)
        self.bar: tqdm | None = None
        self.timed = False  # the clock restarts at the first images (time_from)

    def start(self, total_images: int) -> None:
        """Begin a run of ``total_images`` images."""
        self.bar = progress_bar(int(total_images), desc=self.desc, unit="img", quiet=self.quiet, stream=self.stream,
                                interval_s=self.interval_s, smoothing=0)
        self.timed = False

    def update(self, done: int, cycles: int) -> None:
        """``done`` images finished by simulated cycle ``cycles``."""
        if self.bar is None or self.bar.disable:
            return
        fps = done / (cycles / self.clock_hz) if cycles > 0 else 0.0
        self.bar.set_postfix_str(f"{fps:.1f} simulated FPS", refresh=False)
        if not self.timed and done < self.bar.total:  # the first images carry the set-up: no rate from them
            self.timed = True
            time_from(self.bar, done)
            return
        self.bar.update(done - self.bar.n)

    def finish(self) -> None:
        """Draw the final state once (a run shorter than the refresh interval shows it too), then close the bar
        (it leaves no line behind)."""
        if self.bar is not None:
            if not self.bar.disable:
                self.bar.refresh()
            self.bar.close()
            self.bar = None


__all__ = ["Progress", "paced", "progress_bar", "on_terminal", "time_from"]
