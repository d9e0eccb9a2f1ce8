"""Per-timestep lists on the terminal: every value up to a limit, else the first and last ones (T = 1024 printed
thousands of characters on one line; each command's --json keeps every value)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

MOST_STEPS = 16  # as `satasim run` shows its exit histogram (hw/results.py)


def steps_shown(items: Sequence[str], sep: str = " ", most: int = MOST_STEPS, keep: Iterable[int] = (),
                show: int | None = None) -> str:
    """``items`` joined by ``sep``; past ``most`` items, the first and last ``show // 2`` (``show``: ``most`` unless
    given, fewer for long items) and the indices in ``keep`` (at most ``most`` of them), each run of two or more left
    out written ``... N more ...``."""
    if len(items) <= most:
        return sep.join(items)
    half = (most if show is None else show) // 2
    shown = set(range(half)) | set(range(len(items) - half, len(items))) | set(sorted(set(keep))[:most])
    shown |= {i for i in range(1, len(items) - 1) if i - 1 in shown and i + 1 in shown}  # no "... 1 more ..."
    parts: list[str] = []
    gap = 0
    for i, item in enumerate(items):
        if i in shown:
            if gap:
                parts.append(f"... {gap} more ...")
            parts.append(item)
            gap = 0
        else:
            gap += 1
    return sep.join(parts)
