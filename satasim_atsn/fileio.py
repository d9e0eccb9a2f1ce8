"""General file helpers any floor may import: atomic writes (no partial files on disk-full or kill) and the
one YAML reader of the package (:func:`load_yaml`: safe, and a duplicate key is an error, not last-wins)."""

from __future__ import annotations

import contextlib
import copy
import errno
import fnmatch
import functools
import hashlib
import json
import math
import os
import re
import shutil
import stat
import struct
import sys
import tempfile
import tokenize
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import yaml

from satasim_atsn.errors import SatasimError, shorten_digits, shown, typed_number

STREAM_NAMES = {"-": 1, "/dev/stdout": 1, "/dev/stderr": 2}  # and /dev/fd/N, /proc/self/fd/N


def expand_home(text: str) -> str:
    """A path as the shell would give it: a leading ``~`` or ``~user`` expanded (a quoted "~/x" reaches us as is)."""
    return os.path.expanduser(text) if text.startswith("~") else text


def text_name(name: str | os.PathLike) -> str:
    """A file or folder name as recorded text (JSON, workload metadata): bytes that are not UTF-8 as ``\\xNN``.

    Python reads such bytes of a name as lone surrogates, which JSON readers refuse or garble; the escapes keep
    every byte (lossless) and are what an error message shows."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def starts_as_hdf5(path: str | os.PathLike) -> bool:
    """True when the file starts as an HDF5 file (a NIR graph) does; False when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def starts_as_zip(path: str | os.PathLike) -> bool:
    """True when the file starts as a zip archive (a workload .npz) does; False when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def standard_stream(path: str | os.PathLike) -> int | None:
    """The open file descriptor an output name stands for, else None: ``-`` (the usual name for standard output)
    and ``/dev/stdout`` 1, ``/dev/stderr`` 2, ``/dev/fd/N`` and ``/proc/self/fd/N`` N.

    Such an output is written through the descriptor itself, at its offset: resolving the name instead replaced
    the file a shell had redirected standard output to (``--json - >> log`` lost the log), and ``--json -`` wrote
    a file named ``-``."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        return None
    if text in STREAM_NAMES:
        return STREAM_NAMES[text]
    match = re.fullmatch(r"/(?:dev/fd|proc/self/fd)/(\d+)", text)
    return int(match.group(1)) if match else None


def _write_to_stream(fd: int, data: bytes, path: str | os.PathLike) -> None:
    """Write all of ``data`` to descriptor ``fd``, after what Python has buffered for stdout and stderr."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    except BrokenPipeError:
        raise  # the reader went away (`--json - | head`): click ends quietly (exit 1), as for any output
    except OSError as error:
        raise _unwritable(path, error) from None


def write_target(path: str | os.PathLike) -> tuple[Path, bool]:
    """Where a write to ``path`` really goes, and whether it can be atomic (temp file + rename).

    A symbolic link is followed, so the link stays and the file it names is replaced (renaming onto
    the link would turn it into a regular file). A FIFO, a character device or a socket that exists
    (``/dev/stdout``, ``/dev/null``, a named pipe) is written in place: renaming onto it would replace
    the special file itself. A directory is refused.
    """
    target = Path(os.path.realpath(path))
    try:  # stat the name as given: /dev/stdout -> /proc/self/fd/1 -> a pipe has no real path to resolve to
        mode = os.stat(path).st_mode
    except OSError:
        return target, True  # nothing there yet (or a dangling link: write where it points)
    if stat.S_ISDIR(mode):
        raise SatasimError.at(str(path), None, "is a directory", "give a file name")
    if not stat.S_ISREG(mode):
        return Path(path), False  # a special file, written in place through the name given
    return target, True


def _unwritable(path: str | os.PathLike, error: OSError) -> SatasimError:
    return SatasimError.at(str(path), None, f"cannot be written ({error.strerror or error})",
                           "choose a writable location")


def atomic_write_with(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Let ``write(temp_path)`` fill a temp file beside ``path``, fsync it, and rename it into place.

    For writers that want a file name (h5py for NIR) as much as for bytes. Links are followed; a special
    file (``/dev/stdout``, a FIFO) gets the finished temp file's bytes in place (:func:`write_target`).
    An OS error (unwritable place, full disk) becomes a one-line SatasimError naming the path, and no
    partial file is left.
    """
    fd = standard_stream(path)
    if fd is not None:  # made in the temp directory, then written through the descriptor
        try:
            handle, tmp = tempfile.mkstemp(prefix=".satasim-", suffix=".tmp")
            os.close(handle)
        except OSError as error:
            raise _unwritable(path, error) from None
        try:
            write(tmp)
            _write_to_stream(fd, Path(tmp).read_bytes(), path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return
    refuse_dangling_links(path, None)
    target, atomic = write_target(path)
    try:
        if atomic:
            target.parent.mkdir(parents=True, exist_ok=True)
        # the name shortened: a legal 250-character name plus the temp's affixes would pass NAME_MAX (255)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:100]}.", suffix=".tmp",
                                   dir=target.parent if atomic else None)
        os.close(fd)
    except OSError as error:
        raise _unwritable(path, error) from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        try:  # a file replaced keeps its permissions (a 0444 result came back as 0644)
            mode = stat.S_IMODE(os.stat(target).st_mode) if atomic else 0o666 & ~umask
        except OSError:
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        write(tmp)
        if not atomic:
            with open(target, "wb") as handle:
                handle.write(Path(tmp).read_bytes())
            os.unlink(tmp)
            return
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(error, OSError):
            raise _unwritable(path, error) from None
        raise


# what numpy's .npz reader raises on a damaged or foreign file: the zip layer, a corrupt member, and a corrupt
# .npy header, which numpy parses with Python's tokenizer (Python 3.12 raises tokenize.TokenError there, 3.11 a
# SyntaxError or ValueError). Every caller turns these into one line naming the file.
NPZ_READ_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile, zlib.error, NotImplementedError, ValueError, OSError, EOFError, KeyError, struct.error,
    tokenize.TokenError, SyntaxError)


def process_alive(pid_text: str) -> bool:
    """Whether the process of this id runs (a name without a number counts as a dead run's)."""
    if not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process, or a platform without signals: leave it
    return True


def _exists(path: Path) -> bool:
    """``path.exists()``, False for a name the system cannot look up (too long, a loop): the command's own check
    of its output then says what is wrong with it, not the lookup's bare OSError."""
    try:
        return path.exists()
    except OSError:
        return False


@contextlib.contextmanager
def new_output_directory(path: str | os.PathLike) -> Iterator[None]:
    """Let a command create ``path`` (and its missing parents) for its outputs: if it fails or is interrupted
    before any file is in them, the directories it created are removed, so a run that wrote nothing leaves
    nothing behind (an error found after ``-o`` was made left an empty directory)."""
    created, probe = [], Path(path)
    while not _exists(probe) and probe != probe.parent:
        created.append(probe)
        probe = probe.parent
    try:
        yield
    except BaseException:
        for folder in created:  # deepest first; a name the system cannot look up was never made
            with contextlib.suppress(OSError):
                if folder.is_dir() and not any(f.is_file() or f.is_symlink() for f in folder.rglob("*")):
                    shutil.rmtree(folder, ignore_errors=True)
        raise


_HELD_DIRECTORIES: set[str] = set()  # the directories this process holds a directory_lock on


@contextlib.contextmanager
def directory_lock(path: str | os.PathLike, option: str, holder: str, wait: bool = False) -> Iterator[None]:
    """Hold an exclusive advisory lock (``flock``) on the existing directory ``path`` for the block. Another
    process that holds it makes this a one-line error naming ``option`` and ``holder`` (what else is writing there),
    or, with ``wait``, makes this wait for it. This process taking it again (a sweep writing its report) just runs.

    The lock is the kernel's, so a killed holder leaves none behind. Where the platform or the file system has no
    ``flock`` (or the directory cannot be opened) the block runs unguarded."""
    try:
        import fcntl
    except ImportError:  # no fcntl (Windows)
        fcntl = None
    key = os.path.realpath(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)) \
            if fcntl is not None and key not in _HELD_DIRECTORIES else None
    except OSError:
        fd = None
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                _HELD_DIRECTORIES.add(key)
            except BlockingIOError:
                raise SatasimError.at(str(path), option, f"{holder} is writing into it now",
                                      f"wait for it to end, or give another {option}") from None
            except OSError:  # a file system without flock: unguarded
                pass
        yield
    finally:
        if fd is not None:
            _HELD_DIRECTORIES.discard(key)
            os.close(fd)


@contextlib.contextmanager
def staged_directory(out: Path, named: Callable[[Path], set[str]] | None = None) -> Iterator[Path]:
    """A hidden directory inside ``out`` to write a report into. Its files replace ``out``'s only once the block
    ends without error, so Ctrl-C or an error while plotting leaves ``out`` as it was (before, a few new plots
    beside the old report). A staging directory that a killed run left behind is removed by the next one; one
    whose process still runs (a concurrent run into the same ``out``) is left alone.

    ``named(directory)``: the files the report in a directory names (its plots); those the report in ``out`` named
    and the staged one does not are deleted as it moves in, under the same lock, so ``out`` holds what its report
    names even when two runs write into it at once (each read the old names before either moved in: the first's
    timeline plots stayed beside the second's report)."""
    for stale in out.glob(".report-*.staging"):
        if not process_alive(stale.name.split("-")[1]):
            shutil.rmtree(stale, ignore_errors=True)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".report-{os.getpid()}-", suffix=".staging", dir=out))
    except OSError as error:
        raise _unwritable(out, error) from None
    try:
        yield staging
        # two reports into one out at once (two compares): one moves in whole, then the other, never file by file
        with directory_lock(out, "-o", "another report", wait=True):
            _refuse_kind_changes(staging, out)  # before anything moves: out stays as it was
            stale = named(out) - named(staging) if named is not None else set()
            for path in sorted(staging.iterdir()):
                _move_in(path, out / path.name)
            for name in sorted(stale):  # a user's own files, never named by the report, stay
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    (out / name).unlink()
            _fsync_dir(out)
    except SatasimError as error:  # a staged file that could not be written (full disk): name it where it goes
        raise _unstaged(error, staging, out) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _unstaged(error: SatasimError, staging: Path, out: Path) -> SatasimError:
    """``error`` with the staging directory's name (gone once the command ends) replaced by ``out``'s."""
    text = str(error)
    if str(staging) not in text:
        return error
    moved = type(error)(text.replace(str(staging), str(out)))
    moved.field, moved.problem = error.field, error.problem
    return moved


def _refuse_kind_changes(staged: Path, target: Path) -> None:
    """A staged file where ``target`` has a directory (or the reverse) would replace the user's directory or
    file of that name: refuse, naming it (the report stays unwritten, ``target`` as it was)."""
    for path in sorted(staged.iterdir()):
        there = target / path.name
        if not there.exists():
            continue
        if path.is_dir() != there.is_dir():
            what = "a directory" if there.is_dir() else "a file"
            raise SatasimError.at(str(there), None, f"is {what} where the report writes "
                                  f"{'a directory' if path.is_dir() else 'a file'} of that name",
                                  "move it away, or give another -o")
        if path.is_dir():
            _refuse_kind_changes(path, there)


def _move_in(path: Path, target: Path) -> None:
    """Put a staged file or directory at ``target``: a file replaces the file of that name; a directory is
    merged into the one there, file by file, so files a user keeps beside a report's own, at any depth, stay
    (a report's files replace their old versions, as at the top level)."""
    if path.is_dir() and target.is_dir() and not target.is_symlink():
        for child in sorted(path.iterdir()):
            _move_in(child, target / child.name)
        return
    os.replace(path, target)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes atomically to ``path`` (:func:`atomic_write_with`: no partial files, links followed).

    A special file (a FIFO, ``/dev/null``) takes the bytes directly: no temp file is needed, so the result is
    not lost where no temporary directory is writable (a read-only container); standard output (``-``,
    ``/dev/stdout``) is written through its descriptor (:func:`standard_stream`)."""
    fd = standard_stream(path)
    if fd is not None:
        _write_to_stream(fd, data, path)
        return
    target, atomic = write_target(path)
    if atomic:
        atomic_write_with(path, lambda tmp: Path(tmp).write_bytes(data))
        return
    try:
        with open(target, "wb") as handle:
            handle.write(data)
    except BrokenPipeError:
        raise  # the reader went away (`--json - | head`): click ends quietly (exit 1), as for any output
    except OSError as error:
        raise _unwritable(path, error) from None


_WHOLE_DIGEST_BYTES = 16 * 2**20  # a file that is no zip is hashed whole up to this size, else its ends only


def content_key(path: str | os.PathLike, directory: int | None = None) -> tuple:
    """What identifies a file's contents for a cache: its resolved path, device, inode, size and modification time,
    and a digest of its bytes that stays cheap for a large file: a zip's (an .npz's) central directory to its end,
    which holds every member's CRC-32 and sizes, else the whole file (YAML files are small). A file rewritten in
    place keeping its size and time (``os.utime``, ``cp -p``) gets another key; (None,) if it cannot be read.
    ``directory``: where the zip's central directory starts, when the caller knows it (no zip parse per call)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the open: its reader refuses it by name
            return (os.path.realpath(path), None)
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            stamp = (os.path.realpath(path), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
            if directory is not None:
                handle.seek(directory)
                return stamp + (_digest_of(handle, None),)
            return stamp + (_zip_directory_digest(handle) or _bytes_digest(handle, info.st_size),)
    except OSError:
        return (None,)


def _zip_directory_digest(handle: IO[bytes]) -> str | None:
    """sha256 of a zip's bytes from its central directory on (None: the file is no readable zip)."""
    try:
        with zipfile.ZipFile(handle) as archive:
            start = archive.start_dir
    except NPZ_READ_ERRORS:
        return None
    handle.seek(start)
    return _digest_of(handle, None)


def _bytes_digest(handle: IO[bytes], size: int) -> str:
    """sha256 of a file's bytes (of its first and last 8 MiB beyond _WHOLE_DIGEST_BYTES: no workload reads it)."""
    handle.seek(0)
    if size <= _WHOLE_DIGEST_BYTES:
        return _digest_of(handle, None)
    head = _digest_of(handle, _WHOLE_DIGEST_BYTES // 2)
    handle.seek(size - _WHOLE_DIGEST_BYTES // 2)
    return head + _digest_of(handle, None)


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 (hex) of a whole file's bytes, read 1 MiB at a time (OSError for a missing or unreadable file)."""
    with open(path, "rb") as handle:
        return _digest_of(handle, None)


def _digest_of(handle: IO[bytes], limit: int | None) -> str:
    """sha256 of the next ``limit`` bytes of ``handle`` (None: to its end), read 1 MiB at a time."""
    digest, left = hashlib.sha256(), math.inf if limit is None else limit
    while left > 0:
        block = handle.read(int(min(left, 2**20)))
        if not block:
            break
        digest.update(block)
        left -= len(block)
    return digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable: fsync the directory that holds the new name (where the OS allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write UTF-8 text (results, reports, CSVs).

    A path that is not valid UTF-8 (a byte like 0xff, or any non-ASCII name under ``LC_ALL=C``) reaches Python
    as lone surrogates; they are written back as the bytes they stand for, so a report's "Regenerate with"
    command names the same file instead of failing after the work (UnicodeEncodeError)."""
    atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"))


def json_default(value: object) -> object:
    """``json.dumps``'s ``default`` for numpy values: a numpy scalar as its Python number, an array as lists."""
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(type(value).__name__)


def write_json(path: str | os.PathLike, data: object) -> None:
    """A command's numbers as deterministic JSON (indent 2, sorted keys, a final newline), written atomically.

    A NaN or infinite float becomes ``null``: Python would write ``NaN``, which is not JSON."""
    atomic_write_text(path, json.dumps(_finite_or_null(data), indent=2, sort_keys=True, allow_nan=False) + "\n")


def _finite_or_null(value: object) -> object:
    """``value`` with every non-finite float (at any depth of dicts, lists and tuples) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    return value


class DuplicateKeyError(yaml.YAMLError):
    """A mapping of a YAML document names one key twice (raised inside the loader, turned into the
    caller's SatasimError by :func:`load_yaml`)."""

    def __init__(self, key: object, line: int, first_line: int) -> None:
        super().__init__(f"duplicate key {key!r} at line {line}")
        self.key, self.line, self.first_line = key, line, first_line


class AmbiguousIntegerError(yaml.YAMLError):
    """An integer written with a leading zero (``010``): YAML 1.1 reads it as octal (8), which nobody means in
    a hardware description; raised inside the loader, worded by :func:`load_yaml`."""

    def __init__(self, text: str, line: int) -> None:
        super().__init__(f"integer {text!r} at line {line} has a leading zero")
        self.text, self.line = text, line


class SexagesimalNumberError(yaml.YAMLError):
    """A number written with colons (``1:30``): YAML 1.1 reads it in base 60 (90), which nobody means in a
    hardware or network description; raised inside the loader, worded by :func:`load_yaml`."""

    def __init__(self, text: str, line: int, value: float) -> None:
        super().__init__(f"number {text!r} at line {line} is base 60")
        self.text, self.line, self.value = text, line, value


class TooManyDigitsError(yaml.YAMLError):
    """An integer of more digits than Python converts from text (4300): yaml's int() raised ValueError, a
    traceback; raised inside the loader, worded by :func:`load_yaml`."""

    def __init__(self, text: str, line: int) -> None:
        super().__init__(f"integer at line {line} has {len(text)} characters")
        self.text, self.line = text, line


_LEADING_ZERO_OCTAL = re.compile(r"[-+]?0[0-7_]+")


def _decimal_spelling(text: str) -> str:
    """'-007' -> '-7', '010' -> '10': the number the writer most likely meant."""
    sign = "-" if text.startswith("-") else ""
    return sign + (text.lstrip("+-").replace("_", "").lstrip("0") or "0")


class UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """yaml's safe loader (the C one where available) that refuses a key given twice in one mapping.

    Each mapping node is checked once, before ``flatten_mapping`` inlines its ``<<`` merges, so a key
    that overrides a merged one is not a duplicate."""

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """Check ``node``'s own keys for duplicates, then inline its merges as yaml does."""
        if not getattr(node, "unique_keys_checked", False):
            node.unique_keys_checked = True
            first: dict[object, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
                try:
                    if key in first:
                        raise DuplicateKeyError(key, line, first[key])
                    first[key] = line
                except TypeError:  # an unhashable key: yaml's own check reports it
                    continue
        super().flatten_mapping(node)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        """yaml's int, except that a leading-zero integer (YAML 1.1 octal) is an error, not a silent 8 for 010."""
        if _LEADING_ZERO_OCTAL.fullmatch(str(node.value)):
            raise AmbiguousIntegerError(str(node.value), node.start_mark.line + 1)
        try:
            value = super().construct_yaml_int(node)
        except ValueError:  # more digits than int() takes from text
            raise TooManyDigitsError(str(node.value), node.start_mark.line + 1) from None
        if ":" in str(node.value):
            raise SexagesimalNumberError(str(node.value), node.start_mark.line + 1, value)
        return value

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        """yaml's float, except that a base-60 one (``1:30.5``) is an error, not a silent 90.5, and one beyond a
        float's range is a TypedNumber (its messages show it as written)."""
        value = super().construct_yaml_float(node)
        if ":" in str(node.value):
            raise SexagesimalNumberError(str(node.value), node.start_mark.line + 1, value)
        return typed_number(str(node.value), value)  # one written beyond a float's range keeps its text, not 'inf'


UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", UniqueKeyLoader.construct_yaml_int)
UniqueKeyLoader.add_constructor("tag:yaml.org,2002:float", UniqueKeyLoader.construct_yaml_float)


def load_yaml(source: str | bytes | IO, where: str, error: type[SatasimError] = SatasimError) -> Any:
    """Parse one YAML document safely; a key given twice in a mapping raises ``error`` (one line naming
    ``where``, the key and both lines). Syntax errors stay ``yaml.YAMLError`` for the caller to word."""
    try:
        return yaml.load(source, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except AmbiguousIntegerError as octal:
        raise error.at(where, f"line {octal.line}", f"{octal.text} has a leading zero, which YAML reads as an octal "
                       f"number ({int(octal.text.replace('_', ''), 8)})",
                       f"write {_decimal_spelling(octal.text)} for decimal, "
                       "or quote it") from None
    except SexagesimalNumberError as base60:
        raise error.at(where, f"line {base60.line}", f"{base60.text} is a base-60 number in YAML 1.1 "
                       f"({base60.value:g})", f"write {base60.value:g} if that is meant, or quote it if it is "
                       "text") from None
    except TooManyDigitsError as long:
        raise error.at(where, f"line {long.line}", f"the integer {shorten_digits(long.text)} is longer than any "
                       "value a field takes", "write a number in the field's range") from None
    except DuplicateKeyError as dup:
        raise error.at(where, f"line {dup.line}", f"key {shown(dup.key)} is given twice (first at line "
                       f"{dup.first_line}); YAML would silently keep the last one",
                       "delete or rename one of them") from None


def yaml_syntax_fix(text: str | None, error: yaml.YAMLError, default: str) -> str:
    """The fix for a YAML syntax error: a tab where YAML wants spaces gets its own ("is the file truncated?" sent a
    user with a tab-indented line looking for a cut-off file), anything else ``default``."""
    mark = getattr(error, "problem_mark", None)
    if text is not None and mark is not None:
        lines = text.splitlines()
        if mark.line < len(lines) and "\t" in lines[mark.line][: mark.column + 1]:
            return f"replace the tab on line {mark.line + 1} with spaces (YAML indents with spaces only)"
    if "another document" in str(getattr(error, "problem", "") or ""):  # a '---' and a second document after it
        line = f" at line {mark.line + 1}" if mark is not None else ""
        return f"keep one document per file: split it{line} into two files, or remove the '---' and what follows"
    return default


def load_yaml_text(text: str, where: str, error: type[SatasimError] = SatasimError) -> Any:
    """:func:`load_yaml` of a text, parsed once per process and handed out as a fresh copy.

    A study checks and simulates thousands of points of one architecture file and one technology table;
    parsing them again for each point took about 1 ms each. Keyed by the text itself, so an edited file
    is parsed again."""
    return copy.deepcopy(_parsed(text, where, error))


@functools.lru_cache(maxsize=64)
def _parsed(text: str, where: str, error: type[SatasimError]) -> Any:
    return load_yaml(text, where, error)


def refuse_overwriting_inputs(outputs: dict[str, str | os.PathLike | None],
                              inputs: list[str | os.PathLike | None]) -> None:
    """Fail before any work when an output option names one of the command's input files (``--json W.npz``
    would silently destroy the workload it reads); paths are compared after resolving links and ``..``."""
    given = {real_path(p): str(p) for p in inputs if p}
    for option, out in outputs.items():
        if out and real_path(out) in given:
            raise SatasimError.at(str(out), option, f"is also the input {given[real_path(out)]}; writing it "
                                  "would destroy that input", "choose another output path")


#: output options every command that has them requires (an empty one cannot be "left out")
REQUIRED_OUTPUTS = ("-o", "--out", "--output")


def real_path(path: str | os.PathLike) -> Path:
    """``Path(path).resolve()`` that never raises: a loop of symbolic links made Python 3.11's resolve raise
    RuntimeError (a traceback for ``--json LOOP``); the loop itself is refused by :func:`refuse_dangling_links`."""
    return Path(os.path.realpath(path))


def is_link_loop(path: str | os.PathLike) -> bool:
    """Whether ``path`` is (or goes through) a loop of symbolic links."""
    try:
        os.stat(path)
    except OSError as error:
        return error.errno == errno.ELOOP
    return False


def dangling_link(path: str | os.PathLike) -> tuple[Path, Path] | None:
    """The first symbolic link on ``path`` (the path itself or a folder on it) that names nothing, and the path
    it names; None when there is none."""
    probe = Path(path)
    chain = [probe, *probe.parents]
    for link in reversed(chain):
        if os.path.islink(link) and not os.path.exists(link):  # os.path: False on any OSError (a name too long)
            return link, Path(os.path.realpath(link))
    return None


def refuse_dangling_links(path: str | os.PathLike | None, option: str | None, is_dir: bool = False) -> None:
    """Refuse an output through a symbolic link that names nothing, naming the link and its target; no directory
    is made outside what the user named. A file link whose target's folder exists is written through, as a shell's
    ``>`` does (``-o`` through such a link said "cannot be created (File exists)", and ``--json`` made the target's
    missing folders)."""
    found = dangling_link(path) if path is not None else None
    if found is None:
        return
    link, names = found
    what = "is" if link == Path(path) else f"goes through the folder {link}, which is"
    if is_link_loop(link):  # written through, the loop was replaced by the file
        raise SatasimError.at(str(path), option, f"{what} a loop of symbolic links",
                              "point the link at a real path, or give another path")
    if not is_dir and link == Path(path) and names.parent.is_dir():
        return
    if is_dir or link != Path(path):
        problem = f"{what} a symbolic link to {names}, which does not exist"
        missing = names
    else:
        problem = f"is a symbolic link to {names}, whose folder {names.parent} does not exist"
        missing = names.parent
    raise SatasimError.at(str(path), option, problem + " (no folder a link names is made)",
                          f"create {missing} first, or give another path")


def check_output_path(path: str | os.PathLike | None, option: str, is_dir: bool = False,
                      example: str = "results.json") -> None:
    """Fail before any work if an output location cannot be written (an empty path, a directory where a file is
    meant, or the reverse, or a folder where no file can be made), so that a long run never ends in a lost result;
    ``example`` is the file name the fix for a folder name (``out/``) suggests, of the kind the option writes."""
    if path is None:
        return
    if not str(path).strip():
        raise SatasimError.at(None, option, "is an empty path", "give a " + ("directory" if is_dir else "file")
                              + " name" + ("" if option in REQUIRED_OUTPUTS else ", or leave the option out"))
    if is_dir and standard_stream(path) is not None:  # `--csv -` made a directory named '-'
        raise SatasimError.at(str(path), option, "names standard output (or a descriptor), which cannot hold a "
                              "directory of files", "give a directory")
    fd = None if is_dir else standard_stream(path)
    if fd is not None:
        try:
            os.fstat(fd)
        except OSError:
            raise SatasimError.at(str(path), option, f"names descriptor {fd}, which is not open",
                                  "redirect it, or give a file name") from None
        return  # written through the descriptor, at its offset
    target = Path(path)
    if not is_dir and str(path).endswith(("/", os.sep)):  # Path drops the slash: `--json out/` wrote a file `out`
        raise SatasimError.at(str(path), option, "ends with a slash, so it names a folder, not a file",
                              f"give a file name, e.g. {path}{example}")
    try:
        os.stat(path)
    except OSError as error:  # Path.exists raises this one: a traceback
        if error.errno == errno.ENAMETOOLONG:
            longest = max(len(part) for part in target.parts)
            raise SatasimError.at(str(path), option, f"is too long a name for the file system (a part of it has "
                                  f"{longest} characters, or the whole path is too long)",
                                  "give a shorter name") from None
    refuse_dangling_links(path, option, is_dir)
    if not is_dir and target.exists() and not target.is_dir() and not target.is_file():
        return  # a special file (/dev/stdout, /dev/null, a FIFO): written in place, nothing to probe
    parent = target if is_dir else target.parent
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if target.exists() and target.is_dir() != is_dir:
        raise SatasimError.at(str(path), option, "is a directory" if target.is_dir() else "is a file, not a directory",
                              "give a file name" if not is_dir else "give a new or existing directory")
    if not probe.is_dir():
        raise SatasimError.at(str(path), option, f"cannot be written ({probe} is a file)", "choose another location")
    unwritable = SatasimError.at(str(path), option, f"cannot be written (no file can be made in {probe})",
                                 "choose a writable location")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise unwritable
    try:  # the permission bits say yes for root everywhere, even in /proc: make (and remove) a file to be sure
        handle, name = tempfile.mkstemp(dir=probe, prefix=".satasim-probe-")
    except OSError:
        raise unwritable from None
    os.close(handle)
    os.unlink(name)


def check_outputs(files: dict[str, str | os.PathLike | None],
                  dirs: dict[str, tuple[str | os.PathLike | None, tuple[str, ...]]] | None = None,
                  examples: dict[str, str] | None = None) -> None:
    """Check a command's outputs before any work: each writable and not empty, no two options naming one file,
    and no file option naming a directory output or a file written into it (``dirs`` maps an option to its
    directory and the names, glob patterns, the command writes there): the later write would replace the other.
    ``examples`` maps a file option to the file name its errors suggest (default ``results.json``).
    """
    dirs = dirs or {}
    for option, path in files.items():
        check_output_path(path, option, example=(examples or {}).get(option, "results.json"))
    for option, (path, _) in dirs.items():
        check_output_path(path, option, is_dir=True)
    refuse_shared_outputs(files)
    for dir_option, (directory, names) in dirs.items():
        if directory is None:
            continue
        folder = real_path(directory)
        for name in names:  # a directory where the command writes a file: refused now, not after the work
            if not any(ch in name for ch in "*?[") and (folder / name).is_dir():
                raise SatasimError.at(str(Path(directory) / name), dir_option, f"is a directory, where {dir_option} "
                                      f"writes the file {name}", "move it away, or give another directory")
        for option, path in files.items():
            if path is None:
                continue
            target = real_path(path)
            if target == folder:
                raise SatasimError.at(str(path), option, f"is the {dir_option} directory",
                                      "give a file name outside it or inside it")
            if target.parent == folder and any(fnmatch.fnmatchcase(target.name, pattern) for pattern in names):
                raise SatasimError.at(str(path), option, f"is a file that {dir_option} writes into "
                                      f"{directory} ({', '.join(names)}); one would replace the other",
                                      "give another file name")
            # out/validation.md/v.json: its folder would be a file -o writes (it failed after the work)
            inside = [p for p in target.parents if p.parent == folder
                      and any(fnmatch.fnmatchcase(p.name, pattern) for pattern in names)]
            if inside:
                raise SatasimError.at(str(path), option, f"goes through {inside[0]}, a file that {dir_option} "
                                      f"writes", "give another path")


def refuse_shared_outputs(outputs: dict[str, str | os.PathLike | None]) -> None:
    """Fail before any work when two output options name one file (the later write would replace the earlier)."""
    seen: dict[Path | str, str] = {}
    for option, out in outputs.items():
        if not out:
            continue
        fd = standard_stream(out)
        key = f"descriptor {fd}" if fd is not None else real_path(out)
        if key in seen:
            raise SatasimError.at(str(out), option, f"is also {seen[key]}; one would replace the other",
                                  "give each output its own path")
        seen[key] = option
