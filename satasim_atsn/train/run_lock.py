"""One training per checkpoint at a time: a lock file beside it naming the holder's process and its start
time, so that a second run is refused and a lock left by a killed run is taken over."""


from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from satasim_atsn.errors import TrainError
from satasim_atsn.fileio import process_alive


def lock_path(path: Path) -> Path:
    """The lock of one output, in the temp folder (nothing beside the user's files, and a missing -o folder is
    fine), named by the output's resolved path."""
    key = hashlib.sha256(str(path.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return Path(tempfile.gettempdir()) / f"satasim-train-{key}.lock"


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (field 22 of Linux's /proc/PID/stat, clock ticks after boot); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(errors="replace").rsplit(")", 1)[-1].split()
    except OSError:
        return None
    return fields[19] if len(fields) > 19 else None


def _lock_holder_alive(pid_text: str, started: str) -> bool:
    """Whether the training that wrote a lock still runs: its process id is alive and, where the lock recorded the
    process's start time, that process started then (a killed run's id may since belong to another program)."""
    if not process_alive(pid_text):
        return False
    now = _process_start(int(pid_text)) if started else None
    return now is None or now == started


@contextlib.contextmanager
def training_lock(ckpt: Path, output: str | Path):
    """Hold the checkpoint and the workload for one training: a second training into either (the same command
    started twice, or its --resume while it runs) is refused instead of interleaving its checkpoints with this
    one's and replacing its workload. A lock whose process is gone (SIGKILL) is taken over."""
    taken: list[Path] = []
    try:
        for path, option in ((ckpt, "--checkpoint"), (Path(output), "-o")):
            lock = lock_path(path)
            if lock in taken:
                continue
            for _ in range(3):
                try:
                    fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    owner = lock.read_text(errors="replace").strip() if lock.is_file() else ""
                    owner, _, started = owner.partition(" ")
                    if _lock_holder_alive(owner, started) and owner != str(os.getpid()):
                        raise TrainError.at(str(path), option, f"another training (process {owner}) is writing it",
                                            "wait for that training to end, or write to another -o and "
                                            "--checkpoint") from None
                    try:
                        lock.unlink()
                    except FileNotFoundError:
                        pass
                    except OSError:  # another user's dead lock in a sticky temp folder: train unguarded
                        break
                    continue
                except OSError:  # no temp folder to lock in: train unguarded rather than not at all
                    break
                with os.fdopen(fd, "w") as handle:  # the start time tells this process from a later one of its id
                    handle.write(f"{os.getpid()} {_process_start(os.getpid()) or ''}".strip())
                taken.append(lock)
                break
        yield
    finally:
        for lock in taken:
            with contextlib.suppress(OSError):
                lock.unlink()
