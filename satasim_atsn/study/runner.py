"""Running a study's points: local processes or a Dask cluster, a crash-safe CSV journal, resume.

Output directory layout::

    study.json    the study's identity (name, fields, metrics, points, digest; an engine study's hardware
                  model version) -- refuses a different study, or one computed by another model
    points.csv    one row per finished point; appended (one write + fsync per row) as points finish,
                  rewritten sorted by point when the sweep ends; rows are reused on resume by their key
    report.md / report.html / *.png   written by study.sweep_report

A point that raises is recorded as an ``error`` row and the sweep continues; a worker process
that dies takes its point with it (the point is retried alone, then recorded as an error).
A point whose combination of values the architecture refuses (checked in the worker, before it would
simulate) is a ``skipped`` row with the reason. Error and skipped rows are checked again on the next run;
``ok`` rows are never recomputed. A point reported twice
(Dask re-running the task of a lost worker) is journaled once. Every other file is written
atomically; temp files of a killed run are removed at the next start (tests/test_sweep_crash.py
kills sweeps with SIGKILL and checks that nothing finished is lost or recomputed).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import io
import json
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from satasim_atsn.errors import StudyError, counted
from satasim_atsn.fileio import atomic_write_text, check_output_path, write_json
from satasim_atsn.study.spec import functional_refusal, point_overrides, point_params, point_refusal
from satasim_atsn.study.spec_types import Study
from satasim_atsn.threads import apply_thread_policy, set_worker_threads, share_threads_with, usable_cpus

CSV_NAME = "points.csv"
STUDY_JSON = "study.json"


@contextlib.contextmanager
def process_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """Worker processes started by ``spawn``: a forked child of a process whose numba kernels
    already run OpenMP threads is unsafe (GNU OpenMP aborts it), so workers start fresh. The
    workers share this process's numba threads (no result depends on how many each has).

    When the caller stops with an exception (Ctrl-C, or SIGTERM, which the CLI turns into one) the
    workers are terminated at once instead of finishing their points: a worker left running when its
    parent is gone never exits.
    """
    workers = max(1, workers)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=start_worker, initargs=(share_threads_with(workers), os.getpid()))
    stop = _StopWhilePooled(pool)
    try:
        with stop.deferred():
            yield pool
    except BaseException:
        _end_pool(pool)
        stop.raise_if_signalled()  # a worker's BrokenProcessPool after the stop is the stop
        raise
    if stop.signalled():
        _end_pool(pool)
        stop.raise_if_signalled()
    pool.shutdown(wait=True)


def _end_pool(pool: ProcessPoolExecutor) -> None:
    """Terminate the pool's workers at once and cancel what is queued (no wait for points in progress)."""
    _quiet_broken_pool_thread()
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


class _StopWhilePooled:
    """Ctrl-C or SIGTERM while a process pool runs, turned into an exception at a safe point.

    Python raises a signal's exception (KeyboardInterrupt, the CLI's Terminated) between any two bytecodes of the
    main thread; inside concurrent.futures' own code (``wait``, ``Future.result``, ``submit``) that can leave a
    future's lock held, and the pool's manager thread, setting that future's result, then waits for it forever:
    a sweep sent SIGTERM said nothing and never exited (seen once in session 42, its stacks taken with py-spy).
    While the pool runs, the signal only records itself and terminates the workers, which breaks every pending
    future, so the caller's wait returns; when the pool's block ends (normally or with the broken futures'
    error) the signal's own handler is called there, and raises as it would have.
    """

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self, pool: ProcessPoolExecutor) -> None:
        self.pool = pool
        self.received: list[tuple[int, Any]] = []  # (signal, frame) of the first signal that arrived
        self.previous: dict[int, Any] = {}  # each deferred signal's handler before the pool

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Record Ctrl-C and SIGTERM instead of raising them (main thread only; an ignored signal stays ignored)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        for name in self.SIGNALS:
            number = getattr(signal, name)
            handler = signal.getsignal(number)
            if handler in (signal.SIG_IGN, None):
                continue
            self.previous[number] = handler
            signal.signal(number, self._record)
        try:
            yield
        finally:
            for number, handler in self.previous.items():
                signal.signal(number, handler)

    def _record(self, number: int, frame: Any) -> None:
        if not self.received:
            self.received.append((number, frame))
        try:  # the handler must not raise: a worker that already ended is no error
            for process in list((getattr(self.pool, "_processes", None) or {}).values()):
                process.terminate()
        except Exception:  # noqa: BLE001,S110 - the pool's bookkeeping changed under us: the workers end anyway
            pass

    def signalled(self) -> bool:
        """True when Ctrl-C or SIGTERM arrived while the pool ran."""
        return bool(self.received)

    def raise_if_signalled(self) -> None:
        """Act on a recorded signal as its own handler would have: call it (it raises), or, for the default
        action, deliver the signal again now that the workers are gone."""
        if not self.received:
            return
        number, frame = self.received[0]
        handler = self.previous.get(number, signal.SIG_DFL)
        if callable(handler):
            handler(number, frame)
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
        time.sleep(1)  # the default action ends the process; a signal left pending would be a bug
        raise KeyboardInterrupt


#: how often a worker checks that its parent is still there (seconds)
PARENT_CHECK_SECONDS = 1.0


def start_worker(threads: int, parent: int) -> None:
    """A worker's start: its share of the numba threads, and a watchdog that ends it once ``parent`` is gone.

    A parent killed with SIGKILL cannot terminate its workers, and they waited for work forever (a user's audit
    found them alive 12 minutes later, holding the pipe of whatever ran the sweep): now each exits within
    about a second of its parent."""
    apply_thread_policy()  # before set_worker_threads, which starts numba's OpenMP (a library caller's pool)
    set_worker_threads(threads)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="satasim-parent-watchdog", daemon=True).start()


def _quiet_broken_pool_thread() -> None:
    """The executor's manager thread, finding its terminated workers, sets an exception on futures this process
    already cancelled and dies printing a traceback (InvalidStateError) after the user's one-line error: drop
    that one exception of that thread; any other keeps Python's report."""
    import concurrent.futures

    previous = threading.excepthook
    if getattr(previous, "drops_invalid_state", False):  # installed by an earlier pool already
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        if not issubclass(args.exc_type, concurrent.futures.InvalidStateError):
            previous(args)

    hook.drops_invalid_state = True  # type: ignore[attr-defined]
    threading.excepthook = hook


# ------------------------------------------------------------------------------------------
# the work of one point (runs in a worker process)
# ------------------------------------------------------------------------------------------
def _points(count: Any) -> str:
    """'1 point', '12 points' (a count from a study.json, which may hold anything: shown as it is)."""
    return f"{count} point" if count == 1 else f"{count} points"


def run_point(task: dict) -> dict[str, Any]:
    """Compute the metrics of one point; ``task`` is a plain dict (picklable for any executor)."""
    if task["mode"] == "functional":
        from satasim_atsn.study.functional import functional_metrics

        return functional_metrics(task["workload"], task["start"], task["images"], task["params"], task["metrics"])
    from satasim_atsn.study.metrics import simulate_metrics

    return simulate_metrics(task["arch"], task["overrides"], task["workload"], task["images"], task["start"],
                            task["metrics"])


def _execute(task: dict) -> dict[str, Any]:
    """Worker entry point."""
    return run_point(task)


#: the key of a worker's answer for a point its architecture refuses (a skipped row, not an error)
REFUSED = "__refused__"


def checked_point(point_function: Callable[[dict], dict], task: dict) -> dict[str, Any]:
    """In the worker: {REFUSED: reason} for a combination the architecture refuses, else ``point_function(task)``."""
    if task["mode"] == "engine":
        reason = point_refusal(task["arch"], task["overrides"], task["workload"], task["shown_arch"], task["varied"],
                               task["shown_workload"])
    else:
        reason = functional_refusal(task["params"], task["varied"])
    if reason is not None:
        return {REFUSED: reason}
    return point_function(task)


def make_task(study: Study, point: dict[str, Any]) -> dict:
    """The picklable task of one point."""
    return {
        "mode": study.mode,
        "arch": None if study.arch is None else str(study.point_arch(point)),
        "shown_arch": None if study.arch is None else str(point.get("arch", study.point_arch(point).name)),
        "workload": str(study.workload),
        "shown_workload": str(study.raw["workload"]),
        "images": study.images,
        "start": study.start,
        "overrides": point_overrides(study, point),
        "params": point_params(study, point) if study.mode == "functional" else dict(point),
        "varied": sorted(point),
        "metrics": list(study.metrics),
    }


# ------------------------------------------------------------------------------------------
# the CSV journal
# ------------------------------------------------------------------------------------------
def csv_columns(study: Study) -> list[str]:
    """Columns: point index, content key, varied fields, status, metrics, error."""
    return ["point", "key"] + study.fields + ["status"] + study.metrics + ["error"]


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _line(columns: list[str], row: dict[str, Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([_format(row.get(c)) for c in columns])
    return buffer.getvalue()


def append_row(path: Path, columns: list[str], row: dict[str, Any]) -> None:
    """Append one row with a single write and fsync (a crash leaves at most a partial last line)."""
    data = _line(columns, row).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a journal; a partial last line (interrupted write) is dropped."""
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")  # a damaged row just fails to match its key
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as error:  # edited by hand or corrupted beyond a partial last line
        raise StudyError.at(str(path), None, f"is not a readable journal ({error})",
                            "fix or delete it, or run with --force to start over") from None
    # a row cut short (fewer fields than the header) is not a finished point: it is run again
    return [r for r in rows if None not in r.values() and None not in r]


def write_sorted(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """Rewrite the journal atomically, sorted by point index."""
    rows = sorted(rows, key=lambda r: int(r["point"]))
    atomic_write_text(path, _line(columns, {c: c for c in columns}) + "".join(_line(columns, r) for r in rows))


# ------------------------------------------------------------------------------------------
# output directory handling
# ------------------------------------------------------------------------------------------
@dataclass
class Prepared:
    """What remains to run and what was reused."""

    columns: list[str]
    done: dict[int, dict[str, Any]]
    todo: list[int]
    reused: int


def _remove_stale_temporaries(out_dir: Path) -> None:
    """Delete temp files of atomic writes that a killed run left behind (``.<name>.<random>.tmp``)."""
    for stale in out_dir.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()


def _plausible(row: dict[str, Any], metrics: list[str]) -> bool:
    """A journal row's metrics are what a point writes: a finite number, or empty for a metric that does not apply.

    A row edited by hand (or damaged) to hold 'nan' or text, or of a journal whose header lacks a metric's column,
    is computed again rather than reported."""
    for metric in metrics:
        if metric not in row:
            return False
        value = row.get(metric)
        if value in ("", None):
            continue
        try:
            if not math.isfinite(float(value)):
                return False
        except (TypeError, ValueError):
            return False
    return True


def make_output_dir(out_dir: Path) -> None:
    """Check and create the sweep's output directory (and its parents)."""
    check_output_path(out_dir, "-o", is_dir=True)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StudyError.at(str(out_dir), "-o", f"cannot be created ({error.strerror or error})",
                            "choose a writable directory") from None
    if not out_dir.is_dir():
        raise StudyError.at(str(out_dir), "-o", "is not a directory", "give a directory for the sweep's outputs")


def prepare_output(study: Study, out_dir: Path, resume: bool, force: bool) -> Prepared:
    """Check the output directory, reuse finished rows, and start a fresh journal holding them."""
    make_output_dir(out_dir)
    _remove_stale_temporaries(out_dir)
    identity = study.identity()
    csv_path, json_path = out_dir / CSV_NAME, out_dir / STUDY_JSON
    previous = None
    if json_path.is_file():
        try:
            previous = json.loads(json_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, OSError):
            previous = None
        if not isinstance(previous, dict):
            if not (resume or force):
                raise StudyError.at(str(json_path), None, "is not a readable study record (damaged or edited)",
                                    "pass --force to start over, or use another -o")
            previous = {"name": "<unreadable study.json>", "digest": None}
    elif any(p.name != ".gitkeep" for p in out_dir.iterdir()):
        previous = _without_study_json(out_dir, resume, force)
    same = previous is not None and previous.get("digest") == identity["digest"]
    older = identity.get("model_version")
    if (previous is not None and not same and not (resume or force) and older is not None
            and previous.get("name") == identity["name"] and previous.get("model_version") != older):
        raise StudyError.at(
            str(out_dir), STUDY_JSON, f"holds {identity['name']!r} computed by hardware model "
            f"{previous.get('model_version', 1)}, and this satasim is model {older} (satasim_atsn.hw.MODEL_VERSION), "
            "whose results differ", "pass --force to compute it again (every point's key names its model, so "
            "--resume would reuse nothing), or use another -o")
    looks_alike = previous is not None and all(previous.get(k) == identity.get(k) for k in
                                               ("name", "mode", "fields", "metrics", "points"))
    if looks_alike and not same and not (resume or force):
        raise StudyError.at(
            str(out_dir), STUDY_JSON,
            f"holds {identity['name']!r} ({_points(identity['points'])}, the same fields and metrics) with other "
            "points: its varied values, or the contents of its architecture, technology or workload file, its set: "
            "entries, images or start changed since",
            "use another -o, --resume to keep the rows of the points that did not change, or --force to start over",
        )
    if previous is not None and not same and not (resume or force):
        raise StudyError.at(
            str(out_dir), STUDY_JSON,
            f"holds a different study ({previous.get('name')!r}, {_points(previous.get('points'))}, fields "
            f"{previous.get('fields')}) than {identity['name']!r} ({_points(identity['points'])})",
            "use another -o, --resume to keep the rows of points the two studies share, or --force to start over",
        )
    columns = csv_columns(study)
    points = study.points()
    base = study.base_identity()
    keys = [study.point_key(p, base) for p in points]
    old = [] if force else read_rows(csv_path)
    by_key = {r.get("key"): r for r in old if r.get("status") == "ok" and _plausible(r, study.metrics)}
    done: dict[int, dict[str, Any]] = {}
    for index, (point, key) in enumerate(zip(points, keys, strict=False)):
        row = by_key.get(key)
        if row is not None:
            done[index] = {**{m: row.get(m, "") for m in study.metrics}, **point, "point": index, "key": key,
                           "status": "ok", "error": ""}
    if previous is not None and not same:
        _remove_report(out_dir)  # another study's report would stand beside this one's rows if the run stops
    write_json(json_path, identity)
    write_sorted(csv_path, columns, list(done.values()))
    todo = [i for i in range(len(points)) if i not in done]
    return Prepared(columns=columns, done=done, todo=todo, reused=len(done))


def _without_study_json(out_dir: Path, resume: bool, force: bool) -> dict | None:
    """A non-empty -o without study.json: a sweep's own directory whose study.json was deleted (its points.csv, whose
    rows carry their keys, is kept with --resume and dropped with --force; it was refused as another command's
    output, even with --force), else refused unless --force (or always, when it holds another command's report)."""
    journal = out_dir / CSV_NAME
    try:
        sweeps = journal.is_file() and journal.open(encoding="utf-8", errors="replace").readline().startswith(
            "point,key,")
    except OSError:
        sweeps = False
    if sweeps and not (out_dir / "results.json").exists():
        if not (resume or force):
            raise StudyError.at(str(out_dir), STUDY_JSON, f"is missing beside a sweep's {CSV_NAME} (deleted?)",
                                "pass --resume to keep the rows of this study's points, --force to start over, or "
                                "use another -o")
        return {"name": "<no study.json>", "digest": None}
    _refuse_another_commands_output(out_dir)
    if not force:
        raise StudyError.at(str(out_dir), None, "is not empty and holds no study",
                            "choose an empty directory or pass --force to write into it")
    return None


#: what `compare`, `reproduce` and `run --json` leave in a directory; a sweep's directory holds study.json besides
OTHER_OUTPUTS = ("report.md", "report.html", "results.json")


def _refuse_another_commands_output(out_dir: Path) -> None:
    """Refuse, even with --force, a directory holding another command's report and no study.json (compare refuses a
    sweep's directory the same way): --force deleted a compare's plots and kept its results.json beside the sweep's
    report."""
    found = [name for name in OTHER_OUTPUTS if (out_dir / name).exists()]
    if found:
        raise StudyError.at(str(out_dir), "-o", f"holds another command's output ({', '.join(found)}) and no "
                            f"{STUDY_JSON}: the sweep's report would replace part of it (even with --force)",
                            "use another -o, or empty the directory first")


def _remove_report(out_dir: Path) -> None:
    """Delete the report (report.md, report.html and the plots report.md shows) of the study ``out_dir`` held."""
    from satasim_atsn.report.document import Document

    for name in sorted(Document.figures_in(out_dir)) + ["report.md", "report.html"]:
        path = out_dir / name
        if path.is_file():
            path.unlink()


# ------------------------------------------------------------------------------------------
# progress
# ------------------------------------------------------------------------------------------
class Progress:
    """A tqdm bar on a terminal (points done, errors, ETA); silent when piped or quiet."""

    def __init__(self, total: int, quiet: bool = False, stream=None) -> None:
        from satasim_atsn.report.progress import progress_bar

        self.total, self.done, self.errors = total, 0, 0
        self.bar = progress_bar(total, desc="sweep", unit="point", quiet=quiet, stream=stream)

    def update(self, ok: bool) -> None:
        """Count one finished point and redraw."""
        self.done += 1
        self.errors += 0 if ok else 1
        if self.errors:
            self.bar.set_postfix_str(f"{self.errors} errors", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        """Close the bar (it leaves no line behind)."""
        self.bar.close()


# ------------------------------------------------------------------------------------------
# executors
# ------------------------------------------------------------------------------------------
def _error_text(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return " ".join(text.split())[:500]


def run_local(tasks: dict[int, dict], jobs: int, on_done: Callable[[int, dict | None, str | None], None],
              point_function: Callable[[dict], dict] = _execute) -> None:
    """Run tasks in a process pool; on_done(index, metrics or None, error or None) as each finishes.

    ``point_function`` must be importable by name (workers are spawned, see process_pool).
    """
    pending = dict(tasks)
    while pending:
        broken: list[int] = []
        with process_pool(min(jobs, len(pending))) as pool:
            futures = {pool.submit(point_function, task): index for index, task in pending.items()}
            remaining = set(futures)
            while remaining:
                finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=lambda f: futures[f]):
                    index = futures[future]
                    try:
                        metrics = future.result()
                    except BrokenProcessPool:
                        broken.append(index)
                        continue
                    except Exception as error:  # noqa: BLE001 - the point's error is recorded, the sweep goes on
                        on_done(index, None, _error_text(error))
                        pending.pop(index)
                        continue
                    on_done(index, metrics, None)
                    pending.pop(index)
        if broken:
            # isolate: run each point whose pool died alone; the one that kills its worker is recorded
            for index in sorted(broken):
                with process_pool(1) as pool:
                    try:
                        metrics = pool.submit(point_function, pending[index]).result()
                    except BrokenProcessPool:
                        on_done(index, None, "worker process died (killed or crashed) while computing this point")
                    except Exception as error:  # noqa: BLE001
                        on_done(index, None, _error_text(error))
                    else:
                        on_done(index, metrics, None)
                pending.pop(index)


def check_scheduler_address(address: str) -> None:
    """A --scheduler address Dask can parse (protocol://host:port), refused in one line otherwise."""
    try:
        from distributed.comm import parse_address, parse_host_port
    except ImportError:
        raise StudyError.at(None, "--scheduler", "needs Dask distributed, which is not installed",
                            'pip install "satasim-atsn[dask]"') from None
    try:
        protocol, location = parse_address(address)
        if protocol != "inproc":  # in-process clusters have no port
            parse_host_port(location)
    except (ValueError, TypeError) as error:
        raise StudyError.at(None, "--scheduler", f"{address!r} is not a scheduler address ({error})",
                            "e.g. --scheduler tcp://127.0.0.1:8786") from None


def connect_scheduler(address: str) -> Any:
    """A Dask ``Client`` connected to ``address``, or a one-line StudyError naming --scheduler.

    Called before the output directory is touched, so an unreachable cluster leaves an old study
    (even under --force) and a new directory exactly as they were.
    """
    check_scheduler_address(address)
    from distributed import Client
    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError, ValueError) as error:
        raise StudyError.at(None, "--scheduler", f"cannot connect to {address} ({error})",
                            "start a scheduler (dask scheduler) or fix the address") from None
    if not client.scheduler_info().get("workers"):  # the sweep would wait for one without a word
        print(f"note: no worker is connected to the scheduler at {address}: the sweep waits until one joins "
              f"(start one with: dask worker {address})", file=sys.stderr)
    return client


@functools.cache
def package_digest() -> str:
    """A SHA-256 (16 hex digits) of the installed package's code and data (its .py and .yaml files, what a wheel
    holds): two installations with one hardware model but other code (an edited checkout, another commit) differ."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".yaml") and p.is_file()
                       and "__pycache__" not in p.parts):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def on_dask_worker(point_function: Callable[[dict], dict], task: dict,
                   model_version: int | None = None, code_digest: str | None = None) -> dict[str, Any]:
    """A point in a Dask worker: the thread policy first (``dask worker`` does not set it), then ``point_function``.

    ``model_version`` is the sweep's hardware model (satasim_atsn.hw.MODEL_VERSION where the sweep runs): a worker whose
    installed satasim computes another model would journal its numbers under this study's model, so the point is an
    error row naming both (retried on the next run). ``code_digest`` is the sweep's package_digest(): a worker with
    other code under the same model number (an edited checkout) is an error row too, in either mode."""
    from satasim_atsn import hw

    if model_version is not None and task.get("mode") == "engine" and model_version != hw.MODEL_VERSION:
        raise StudyError.at(None, "--scheduler", f"this Dask worker runs hardware model {hw.MODEL_VERSION} "
                            f"({hw.__file__}), the sweep model {model_version}",
                            "install the sweep's satasim on every worker and run the sweep again")
    if code_digest is not None and code_digest != package_digest():
        raise StudyError.at(None, "--scheduler", f"this Dask worker's satasim ({Path(hw.__file__).parent.parent}) "
                            f"is other code than the sweep's (package digest {package_digest()}, the sweep's "
                            f"{code_digest}; hardware model {hw.MODEL_VERSION} in both)",
                            "install the sweep's satasim on every worker, restart them, and run the sweep again")
    apply_thread_policy()
    set_worker_threads(dask_task_threads())
    return point_function(task)


def dask_task_threads() -> int:
    """numba threads for one task of this Dask worker: twice its process's share when the worker runs ``nthreads``
    tasks at once (``share_threads_with``'s rule), from the process's maximum, not this thread's last setting.

    A worker of 4 threads ran each task's kernels on all NUMBA_NUM_THREADS: 4 x the CPUs; numba's setting is per
    thread, so each task sets its own (no result depends on it)."""
    import numba

    try:
        from distributed import get_worker

        worker = get_worker()
        slots = int(getattr(getattr(worker, "state", worker), "nthreads", 1))
    except (ImportError, ValueError, AttributeError):  # not in a worker (a direct call)
        slots = 1
    total = int(numba.config.NUMBA_NUM_THREADS)
    return max(1, min(total, 2 * total // max(1, slots)))


def run_dask(tasks: dict[int, dict], client: Any, on_done: Callable[[int, dict | None, str | None], None],
             point_function: Callable[[dict], dict] = _execute) -> None:
    """Run tasks on the Dask cluster of ``client`` (from connect_scheduler; the caller closes it)."""
    from distributed import as_completed

    from satasim_atsn.hw import MODEL_VERSION
    futures = {client.submit(on_dask_worker, point_function, task, MODEL_VERSION, package_digest(), pure=False): index
               for index, task in tasks.items()}
    # results are gathered on the client's own event loop (with_results), not by future.result()
    # in this thread, which fails when another Client lives in the same process
    for future, outcome in as_completed(list(futures), with_results=True, raise_errors=False):
        index = futures[future]
        if future.status == "finished":
            on_done(index, outcome, None)
        else:
            error = outcome[1] if isinstance(outcome, tuple) and len(outcome) == 3 else outcome
            on_done(index, None, _error_text(error if isinstance(error, BaseException) else
                                             RuntimeError(str(error))))


def run_study(study: Study, out_dir: str | Path, jobs: int | None = None, resume: bool = False, force: bool = False,
              scheduler: str | None = None, quiet: bool = False,
              point_function: Callable[[dict], dict] = _execute) -> tuple[list[dict[str, Any]], dict]:
    """Run (or resume) a study into out_dir; returns the sorted rows and run statistics.

    ``point_function`` evaluates one task (default: simulate or evaluate it); tests pass their own.
    """
    out = Path(out_dir)
    # connected before prepare_output, which --force lets empty the directory
    client = connect_scheduler(scheduler) if scheduler is not None else None
    with contextlib.closing(client) if client is not None else contextlib.nullcontext():
        prepared = prepare_output(study, out, resume, force)
        csv_path = out / CSV_NAME
        points = study.points()
        base = study.base_identity()
        rows: dict[int, dict[str, Any]] = dict(prepared.done)
        tasks = {i: make_task(study, points[i]) for i in prepared.todo}
        progress = Progress(len(tasks), quiet=quiet)
        if not quiet and prepared.reused:
            print(f"satasim: {prepared.reused} of {counted(len(points), 'point')} already done in {out}; running "
                  f"{len(prepared.todo)}", file=sys.stderr)

        recorded: set[int] = set()

        def on_done(index: int, metrics: dict | None, error: str | None) -> None:
            if index in recorded:  # a retried task (e.g. Dask re-running a lost worker's point): keep the first
                return
            recorded.add(index)
            row: dict[str, Any] = {"point": index, "key": study.point_key(points[index], base), **points[index]}
            if error is None and REFUSED in (metrics or {}):  # a combination the architecture refuses: not run
                row["status"], row["error"] = "skipped", str((metrics or {})[REFUSED])
            elif error is None:
                row.update({m: (metrics or {}).get(m) for m in study.metrics})
                row["status"], row["error"] = "ok", ""
            else:
                row["status"], row["error"] = "error", error
            append_row(csv_path, prepared.columns, row)
            rows[index] = row
            progress.update(error is None)

        t0 = time.monotonic()
        checked = functools.partial(checked_point, point_function)  # picklable: both are module-level functions
        try:
            if tasks and client is not None:
                run_dask(tasks, client, on_done, checked)
            elif tasks:
                run_local(tasks, jobs or usable_cpus(), on_done, checked)
        finally:
            progress.close()
    elapsed = time.monotonic() - t0
    ordered = [rows[i] for i in sorted(rows)]
    write_sorted(csv_path, prepared.columns, ordered)
    skipped = sum(1 for i in tasks if rows.get(i, {}).get("status") == "skipped")
    stats = {"points": len(points), "computed": len(tasks) - skipped, "reused": prepared.reused,
             "errors": sum(1 for r in ordered if r["status"] == "error"),
             "skipped": sum(1 for r in ordered if r["status"] == "skipped"), "seconds": elapsed}
    return ordered, stats


#: what ``sweep -o DIR`` writes into DIR (besides the temp files of its atomic writes)
SWEEP_FILES = (CSV_NAME, STUDY_JSON, "report.md", "report.html", "*.png")


def study_results(study: Study, out_dir: str | Path, notes: list[tuple[str, list[int]]]) -> dict[str, Any]:
    """A finished sweep's numbers as one JSON document (``sweep --json``): the study's identity (study.json), each
    point's varied values, status, metrics and error as points.csv holds them, and the notes with their points.

    Read back from points.csv, so a resumed sweep gives the same bytes as one run in one go."""
    points = study.points()
    rows = []
    for row in load_rows(study, out_dir):
        index = row["point"]
        rows.append({"point": index, "key": row["key"], "values": dict(points[index]), "status": row["status"],
                     "metrics": {m: row[m] for m in study.metrics} if row["status"] == "ok" else None,
                     "error": row.get("error") or None})
    return {"study": study.identity(), "points": rows,
            "counts": {status: sum(1 for r in rows if r["status"] == status) for status in ("ok", "error", "skipped")},
            "notes": [{"note": note, "points": indices} for note, indices in notes]}


def load_rows(study: Study, out_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of a finished study's CSV with numbers parsed (metrics float or None)."""
    rows = read_rows(Path(out_dir) / CSV_NAME)
    out = []
    for row in rows:
        parsed: dict[str, Any] = dict(row)
        parsed["point"] = int(row["point"])
        for metric in study.metrics:
            value = row.get(metric, "")
            parsed[metric] = float(value) if value not in ("", None) else None
        out.append(parsed)
    return out
