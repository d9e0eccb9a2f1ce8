"""What `satasim train` shows while it runs: a tqdm bar per epoch on a terminal, one permanent line per epoch
(also when piped), nothing under --quiet."""


from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterator


# ------------------------------------------------------------------------------------------
# progress
# ------------------------------------------------------------------------------------------
class Progress:
    """A tqdm bar per epoch on a terminal; one permanent line per epoch (also when piped); nothing when quiet."""

    def __init__(self, quiet: bool, stream=None) -> None:
        import sys

        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = (not quiet) and bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar = None

    def _size(self) -> dict:
        """tqdm's size arguments: follow the terminal when it reports a size, else a fixed 100 x 24 (or the part it
        reports). An unsized pty (``script``, some CI runners) reports 0 rows, and tqdm, following it, hid every bar
        of the training (report/progress.py's ``_size`` fixed it for the other commands; train cannot import it)."""
        try:
            size = os.get_terminal_size(self.stream.fileno())
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return {"ncols": 100, "nrows": 24}
        if size.columns > 0 and size.lines > 0:
            return {"dynamic_ncols": True}
        return {"ncols": size.columns or 100, "nrows": size.lines or 24}

    def start_epoch(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        """Open the epoch's bar (terminal only) at ``done`` of ``steps`` batches."""
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=steps, initial=done, desc=f"epoch {epoch}/{epochs}", unit="batch",
                            file=self.stream, leave=False, **self._size())

    def batch(self, loss: float, acc: float, images_per_s: float) -> None:
        """Advance the bar by one batch with the running loss and accuracy."""
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{100 * acc:.2f}%", img_s=f"{images_per_s:.0f}",
                                 refresh=False)
            self.bar.update(1)

    @contextlib.contextmanager
    def images(self, desc: str, total: int) -> Iterator[Callable[[int], object]]:
        """A bar over the ``total`` test images an evaluation runs through (terminal only; it replaces the epoch's
        finished bar); yields the callback that advances it by n images."""
        if not self.tty:
            yield lambda n: None
            return
        from tqdm import tqdm

        if self.bar is not None:
            self.bar.close()
        self.bar = tqdm(total=total, desc=desc, unit="img", file=self.stream, leave=False, **self._size())
        try:
            yield self.bar.update
        finally:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    def saved_mid_epoch(self, epoch: int, epochs: int, done: int, steps: int, loss: float, acc: float,
                        images_per_s: float) -> None:
        """When piped (a log file), one line per mid-epoch checkpoint: an epoch of a large network takes many
        minutes, and the per-epoch line alone left a log silent that long (a terminal's bar shows it already)."""
        if self.tty or self.quiet:
            return
        self.line(f"epoch {epoch}/{epochs}: {done}/{steps} batches, loss {loss:.4f} train acc {100 * acc:.2f}% "
                  f"({images_per_s:.0f} img/s); checkpoint written")

    def line(self, text: str) -> None:
        """Close any bar and print a permanent line (unless quiet)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.quiet:
            return
        self.stream.write(text + "\n")
        self.stream.flush()
