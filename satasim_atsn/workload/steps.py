"""Per-timestep lists on the terminal: every value up to a limit, else the first and last ones (T = 1024 printed
thousands of characters on one line; each command's --json keeps every value)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

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


#: A report's table (reproduce's Tables 2 and 5) shows every timestep's column up to FIRST_COLUMNS + LAST_COLUMNS + 1
#: of them; past that, the first FIRST_COLUMNS, one column for the timesteps between (their smallest and largest
#: value) and the last LAST_COLUMNS (T = 64 made a terminal line of 521 characters; results.json keeps every value).
FIRST_COLUMNS = 6
LAST_COLUMNS = 2


def step_columns(T: int) -> list[tuple[int, int]]:
    """The timestep columns a table of ``T`` steps shows, each as (first, last) 1-based step: one step, or the
    run of steps between the first and last columns summarised in one."""
    if T <= FIRST_COLUMNS + LAST_COLUMNS + 1:
        return [(t, t) for t in range(1, T + 1)]
    return ([(t, t) for t in range(1, FIRST_COLUMNS + 1)] + [(FIRST_COLUMNS + 1, T - LAST_COLUMNS)]
            + [(t, t) for t in range(T - LAST_COLUMNS + 1, T + 1)])


def step_headers(T: int, prefix: str = "") -> list[str]:
    """The headers of ``step_columns(T)``: ``prefix`` and 'T3' for a step, 'T7-T62 (range)' for a summarised run."""
    return [f"{prefix}T{a}" if a == b else f"{prefix}T{a}-T{b} (range)" for a, b in step_columns(T)]


def steps_note(T: int) -> str:
    """What a table's summarised column means ('' when it shows every timestep), for its caption."""
    runs = [(a, b) for a, b in step_columns(T) if a != b]
    return "".join(f"; T{a}-T{b} (range): the smallest to the largest of those {b - a + 1} timesteps' values "
                   "(results.json holds each)" for a, b in runs)


def step_cells(values: Sequence, T: int, shown: Callable[[float], str], missing: str = "") -> list[str]:
    """The cells of one row of ``step_columns(T)``: each step's value as ``shown`` writes it (``missing`` for None
    or a step past the row's values), a summarised run as 'smallest to largest' of its values."""
    cells = []
    for a, b in step_columns(T):
        part = [v for v in values[a - 1:b] if v is not None]
        if a == b:
            cells.append(shown(part[0]) if part else missing if a <= len(values) else "")
        elif part:
            lo, hi = shown(min(part)), shown(max(part))
            cells.append(lo if lo == hi else f"{lo} to {hi}")
        else:
            cells.append(missing if a <= len(values) else "")
    return cells
