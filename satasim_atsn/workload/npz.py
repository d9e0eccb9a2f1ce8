"""The .npz reader that workloads, training checkpoints and datasets share: the zip's headers checked against each
other, every member checked (numpy .npy data, stored once, not encrypted, no pickled objects, holding the bytes its
header declares) before anything is allocated, and large per-image arrays read by rows when they are needed.

Each caller passes its own error kind (WorkloadError, TrainError, DatasetError), so a damaged file gives one line
naming the file and the member in the caller's terms.
"""

from __future__ import annotations

import io
import math
import mmap
import os
import struct
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from satasim_atsn.errors import SatasimError, WorkloadError
from satasim_atsn.fileio import NPZ_READ_ERRORS, content_key

BLOCK_BYTES = 8 * 2**20  # rows read at a time when a lazily read member is scanned whole
READ_BYTES = 2**20  # bytes asked of the zip member at a time (zipfile holds a few copies of each read)


@dataclass(frozen=True)
class MemberHeader:
    """An .npy member's header: the array it declares and where its data starts in the member."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    offset: int

    @property
    def data_bytes(self) -> int:
        """The bytes of data the header declares (Python ints: no wrap on a damaged shape of 10^12)."""
        return math.prod(self.shape) * self.dtype.itemsize


def _read_header(member: Any) -> MemberHeader | None:
    """An .npy member's header (None without the .npy magic or with a header numpy cannot parse)."""
    try:
        version = np.lib.format.read_magic(member)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read(member)
    except NPZ_READ_ERRORS:
        return None
    return MemberHeader(tuple(int(n) for n in shape), dtype, bool(fortran_order), member.tell())


def check_members(archive: zipfile.ZipFile, where: str,
                  error: type[SatasimError] = WorkloadError) -> dict[str, tuple[zipfile.ZipInfo, MemberHeader | None]]:
    """Each member stored once, not encrypted, not a pickled object array, and holding the bytes its .npy header
    declares; returns each key's zip entry and header (None: not .npy data, refused by :func:`load_npz_arrays`)."""
    members: dict[str, tuple[zipfile.ZipInfo, MemberHeader | None]] = {}
    for info in archive.infolist():
        key = info.filename.removesuffix(".npy")
        if key in members:  # numpy reads one copy: an appended array would silently replace the first
            raise error.at(where, key, "is stored twice in the archive (numpy would read one copy alone)",
                           "the file was appended to or damaged; regenerate it")
        if info.flag_bits & 0x1:  # zipfile stops in RuntimeError ("password required for extraction")
            raise error.at(where, key, "is encrypted in the archive", "save the arrays with np.savez (no password)")
        with archive.open(info) as member:
            header = _read_header(member)
        if header is not None and header.dtype.hasobject:  # np.load(allow_pickle=False) named no member
            raise error.at(where, key, f"is an array of Python objects ({header.dtype}), stored as a pickle, which "
                           "this tool never loads (a pickle can run code)", "store numeric arrays (np.savez of "
                           "numbers or text, no dtype=object)")
        if header is not None and header.data_bytes != info.file_size - header.offset:
            raise error.at(where, key, f"its header declares {list(header.shape)} {header.dtype} "
                           f"({header.data_bytes:,} bytes), but the file holds {info.file_size - header.offset:,} "
                           "bytes of it", "the file is truncated or damaged; regenerate it")
        members[key] = (info, header)
    return members


class NpzRows:
    """An .npy member of an .npz file read along its first axis on demand: ``rows[a:b]`` (or an index array) reads
    those rows alone, streamed out of the zip member, so a file of a million images costs the memory of the few a
    command uses. Shape and dtype are the header's; ``np.asarray`` reads it whole. The file is reopened by path for
    each read and must not have changed since it was checked."""

    def __init__(self, path: str | os.PathLike, where: str, info: zipfile.ZipInfo, header: MemberHeader,
                 error: type[SatasimError] = WorkloadError) -> None:
        # reopened by its absolute path: a later chdir (a library caller's, a test's) reads the same file
        self.path, self.where, self.info, self.header, self.error = os.path.abspath(path), where, info, header, error
        self.key = info.filename.removesuffix(".npy")
        self.directory = _directory_start(self.path)
        self.stamp = content_key(self.path, self.directory)
        self._member: Any = None  # kept open between reads, positioned after the last one
        self._lock = threading.Lock()  # one reader at a time: the draw's threads share the member

    shape = property(lambda self: self.header.shape, doc="The member's shape, from its header.")
    dtype = property(lambda self: self.header.dtype, doc="The member's dtype, from its header.")
    ndim = property(lambda self: len(self.header.shape), doc="The member's number of axes.")
    size = property(lambda self: math.prod(self.header.shape), doc="The member's number of elements.")
    nbytes = property(lambda self: self.header.data_bytes, doc="The member's bytes of data, unpacked.")

    def __len__(self) -> int:
        """Rows along the first axis."""
        return self.header.shape[0]

    @property
    def row_bytes(self) -> int:
        """Bytes of one row (one item along the first axis)."""
        return math.prod(self.header.shape[1:]) * self.header.dtype.itemsize

    def __getitem__(self, index: Any) -> np.ndarray:
        """The rows ``index`` selects (a slice, an integer or an index array; more axes are applied after)."""
        rest: tuple = ()
        if isinstance(index, tuple):
            index, rest = (index[0], index[1:]) if index else (slice(None), ())
        if index is None:  # a new first axis: numpy's x[None, rest] is x[rest][None]
            return self[rest][None]
        if index is Ellipsis:  # x[..., k]: the Ellipsis spans the first axis unless the rest index every axis
            explicit = sum(1 for i in rest if i is not None and i is not Ellipsis)
            return self[rest] if explicit >= self.ndim else self[(slice(None), Ellipsis) + rest]
        kept = 1  # the axes the first index leaves, before those ``rest`` indexes
        if isinstance(index, slice) and index.step in (None, 1):
            start, stop, _ = index.indices(len(self))
            rows = self.read_rows(start, max(start, stop))
        elif isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            position = int(index) + len(self) if int(index) < 0 else int(index)
            if not 0 <= position < len(self):
                raise IndexError(f"index {int(index)} is out of bounds for axis 0 with size {len(self)}")
            rows, kept = self.read_rows(position, position + 1)[0], 0
        else:
            chosen = index if isinstance(index, slice) else np.asarray(index)
            if not isinstance(chosen, slice) and chosen.size == 0 and chosen.dtype.kind == "f":
                chosen = chosen.astype(np.intp)  # x[[]]: numpy's empty selection (np.asarray([]) is float)
            picked = np.arange(len(self))[chosen]  # numpy's rules
            rows = self._read_indices(picked.reshape(-1)).reshape(picked.shape + self.header.shape[1:])
            kept = picked.ndim
        return rows[(slice(None),) * kept + rest] if rest else rows

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The whole member (``np.asarray``)."""
        whole = self.read_rows(0, len(self))
        return whole if dtype is None else whole.astype(dtype, copy=False)

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as a new writable array (the member is decompressed up to ``stop`` only)."""
        out = self._empty(max(0, stop - start))
        with self._lock:
            member = self._member_at(start)
            self._fill(member, out)
            if stop >= len(self):
                self._finish(member)
        return out

    def block_rows(self) -> int:
        """Rows of about BLOCK_BYTES: what :meth:`blocks` yields at a time."""
        return max(1, BLOCK_BYTES // max(1, self.row_bytes))

    def blocks(self, rows: int | None = None) -> Iterator[np.ndarray]:
        """The whole member in blocks of ``rows`` rows (default :meth:`block_rows`), read once to its end, so that
        its CRC is checked too."""
        step = rows or self.block_rows()
        for start in range(0, len(self), step):
            yield self.read_rows(start, min(len(self), start + step))  # the last block ends at the CRC check
        if not len(self):
            with self._lock:
                self._finish(self._member_at(0))

    def _finish(self, member: Any) -> None:
        """At the member's end: read on to it so zipfile compares the CRC, and close the member (nothing is left to
        read forward, so no file stays open between reads: a twin has a member per layer)."""
        self._guard(lambda: member.read(1))
        self.close()

    def _read_indices(self, indices: np.ndarray) -> np.ndarray:
        """Rows at ``indices`` (any order, repeats allowed), each read once in file order, a run of consecutive rows
        (a draw's images i mod M) in one read."""
        unique, inverse = np.unique(indices, return_inverse=True)
        out = self._empty(len(unique))
        cuts = (np.flatnonzero(np.diff(unique) != 1) + 1).tolist()  # runs of consecutive rows: one read each
        with self._lock:
            for lo, hi in zip([0, *cuts], [*cuts, len(unique)], strict=True):
                if lo < hi:
                    member = self._member_at(int(unique[lo]))
                    self._fill(member, out[lo:hi])
            if len(unique) and unique[-1] == len(self) - 1:
                self._finish(member)
        return out[inverse.reshape(-1)]

    def _member_at(self, row: int) -> Any:
        """The member positioned at ``row``: the open one moved forward (reads in file order, as a run's chunks of
        images, decompress the member once in all), or the member opened anew to go back."""
        target = self.header.offset + row * self.row_bytes
        self._check_unchanged()  # also when the member is open: a file rewritten in place would be read as garbage
        if self._member is None or self._member.tell() > target:
            self.close()
            self._member = self._open()
        member = self._member
        while member.tell() < target:  # zipfile's own seek reads 16 MiB at a time: 1 MiB here
            if not self._guard(lambda: member.read(min(READ_BYTES, target - member.tell()))):
                raise self.error.at(self.where, self.key, "ends before the rows its header declares",
                                    "the file is truncated or damaged; regenerate it")
        return member

    def close(self) -> None:
        """Close the member kept open between reads (it is opened again when needed)."""
        if self._member is not None:
            self._member.close()
            self._member = None

    def __getstate__(self) -> dict:
        """A copy (pickle, deepcopy) reopens the file: the open member and the lock stay here."""
        state = dict(self.__dict__)
        state.update(_member=None, _lock=None)
        return state

    def __setstate__(self, state: dict) -> None:
        """Restore a copy with a lock of its own."""
        self.__dict__.update(state, _lock=threading.Lock())

    def _empty(self, count: int) -> np.ndarray:
        """An uninitialised block of ``count`` rows (an allocation beyond memory named, as the eager reader does)."""
        try:
            return np.empty((count,) + self.header.shape[1:], dtype=self.header.dtype)
        except MemoryError:
            raise self.error.at(self.where, self.key, f"{count * self.row_bytes / 1e9:.3g} GB does not fit in this "
                                "machine's memory", "ask for fewer images at a time") from None

    def _fill(self, member: Any, out: np.ndarray) -> None:
        """Fill ``out`` from the member's next bytes; a short read is a damaged member."""
        view, filled = memoryview(out).cast("B") if out.size else memoryview(b""), 0
        while filled < len(view):
            want = min(len(view) - filled, READ_BYTES)
            chunk = self._guard(lambda want=want: member.read(want))
            if not chunk:
                raise self.error.at(self.where, self.key, "ends before the rows its header declares",
                                    "the file is truncated or damaged; regenerate it")
            view[filled:filled + len(chunk)] = chunk
            filled += len(chunk)

    def _guard(self, read: Any) -> Any:
        """Run a read of the member; zip and zlib failures (a bad CRC, a damaged stream) become one line."""
        try:
            return read()
        except NPZ_READ_ERRORS as problem:
            raise self.error.at(self.where, self.key, f"cannot be read ({' '.join(str(problem).split())})",
                                "the file is damaged; regenerate it") from None

    def _check_unchanged(self) -> None:
        """The file is the one checked when it was read (fileio.content_key: its stat and its central directory)."""
        if content_key(self.path, self.directory) != self.stamp:
            self.close()
            raise self.error.at(self.where, self.key, "the file changed since it was read (its rows are read as "
                                "they are needed)", "do not replace the file while a command uses it; run the "
                                "command again")

    def _open(self) -> Any:
        """The member, opened anew from the file (checked unchanged by :meth:`_member_at`)."""
        archive = zipfile.ZipFile(self.path)
        try:
            member = archive.open(self.info)
        except BaseException:
            archive.close()
            raise
        return _Closing(member, archive)


class _Closing(io.BufferedIOBase):
    """A zip member that closes its archive with it."""

    def __init__(self, member: Any, archive: zipfile.ZipFile) -> None:
        super().__init__()
        self.member, self.archive = member, archive

    def read(self, size: int | None = -1) -> bytes:
        """Bytes of the member."""
        return self.member.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move in the member (forward: decompressing and discarding)."""
        return self.member.seek(offset, whence)

    def tell(self) -> int:
        """The position in the member."""
        return self.member.tell()

    def close(self) -> None:
        """Close the member and its archive."""
        self.member.close()
        self.archive.close()
        super().close()


def _directory_start(path: str) -> int:
    """Where the zip's central directory starts (0 if it cannot be read: then the stamp hashes the whole file)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return int(archive.start_dir)
    except NPZ_READ_ERRORS:
        return 0


def load_npz_arrays(path: str | os.PathLike, where: str, error: type[SatasimError] = WorkloadError,
                    lazy: Callable[[str], bool] | Iterable[str] = (),
                    keys: Iterable[str] | None = None) -> dict[str, Any]:
    """Every array of an .npz (no pickles), each checked to be .npy data holding the bytes its header declares and
    stored once: a damaged header (a shape of 10^12) is named instead of allocated, as is an array beyond memory.
    The keys ``lazy`` names or accepts (C-ordered, at least one axis) come as :class:`NpzRows`, read by rows when
    used; with ``keys``, only those of them the file holds are loaded (every member is checked all the same)."""
    by_rows = lazy if callable(lazy) else set(lazy).__contains__
    with zipfile.ZipFile(path) as archive:
        members = check_members(archive, where, error)
    arrays: dict[str, Any] = {}
    with np.load(path, allow_pickle=False) as data:
        for key in data.files if keys is None else [k for k in data.files if k in set(keys)]:
            info, header = members.get(key, (None, None))
            if (by_rows(key) and header is not None and header.shape and not header.fortran_order
                    and info is not None):
                arrays[key] = NpzRows(path, where, info, header, error)
                continue
            try:
                arrays[key] = data[key]
            except MemoryError:
                size = info.file_size if info is not None else 0
                raise error.at(where, key, f"{size / 1e9:.3g} GB does not fit in this machine's memory",
                               "store fewer images (x) or a smaller network in the file") from None
            if not isinstance(arrays[key], np.ndarray):  # numpy hands a member without the .npy magic over as bytes
                raise error.at(where, key, f"is not a numpy array (a {len(arrays[key]):,}-byte member that is not "
                               ".npy data)", "remove it: the .npz may hold numpy arrays only (np.savez; a workload's "
                               "notes go in meta.provenance)")
    return arrays


def read_npz(path: str | os.PathLike, where: str, error: type[SatasimError], fix: str,
             lazy: Callable[[str], bool] | Iterable[str] = (), keys: Iterable[str] | None = None,
             what: str = ".npz file") -> dict[str, Any]:
    """:func:`load_npz_arrays` after the zip's own headers are checked (:func:`zip_problem`); a file that is no
    readable .npz at all is one line, ``where: not a readable <what> (why); fix``."""
    try:
        problem = zip_problem_of(path)
        if problem is not None:
            raise zipfile.BadZipFile(problem)
        return load_npz_arrays(path, where, error, lazy, keys)
    except NPZ_READ_ERRORS as problem:
        raise error.at(where, None, f"not a readable {what} ({' '.join(str(problem).split())})", fix) from None


_LOCAL = struct.Struct("<4sHHHHHIIIHH")


def zip_problem_of(path: str | os.PathLike) -> str | None:
    """zip_problem of a file, read through a memory map: a multi-gigabyte file (a workload, or a disk image named
    .npz) is not copied into memory to check its headers."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size < 4:
            return "does not start with a zip member"
        try:
            view = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # a file system without memory maps: read it
            return zip_problem(handle.read())
        with view:
            return zip_problem(view)


def zip_problem(data: bytes | mmap.mmap) -> str | None:
    """Why a zip container is inconsistent, or None: catches corrupted headers that zipfile ignores.

    zipfile trusts the central directory and checks only each member's CRC, so a damaged name,
    date, flag or size field can pass unnoticed (and e.g. silently drop an array). Here every
    local header must agree with its central-directory entry, the members must tile the file
    up to the central directory, the end record must be plain, and the fields only the central
    directory holds must be the same for every member (one writer wrote them all).
    """
    if data[:4] != b"PK\x03\x04":
        return "does not start with a zip member"
    with zipfile.ZipFile(data if isinstance(data, mmap.mmap) else io.BytesIO(data)) as archive:
        listed = archive.infolist()
        start_dir = archive.start_dir
    infos = sorted(listed, key=lambda i: i.header_offset)
    eocd = len(data) - 22
    if eocd < 0 or data[eocd:eocd + 4] != b"PK\x05\x06":
        return "the end-of-archive record is damaged or followed by extra bytes"
    disk, disk_dir, count_disk, count, _, _, comment = struct.unpack("<HHHHIIH", data[eocd + 4:eocd + 22])
    if (disk, disk_dir, comment) != (0, 0, 0) or count_disk != count or count != len(infos):
        return "the end-of-archive record is inconsistent"
    position = 0
    for info in infos:
        if info.header_offset != position:
            return f"member {info.filename!r} does not start where the previous one ends"
        fields = _LOCAL.unpack_from(data, position)
        sig, version, flags, method, dos_time, dos_date, crc, csize, usize, name_len, extra_len = fields
        name = data[position + 30:position + 30 + name_len]
        y, mo, d, h, mi, se = info.date_time
        expected_date, expected_time = (y - 1980) << 9 | mo << 5 | d, h << 11 | mi << 5 | se // 2
        if (sig != b"PK\x03\x04" or version != info.extract_version | info.reserved << 8 or flags != info.flag_bits
                or method != info.compress_type or (dos_date, dos_time) != (expected_date, expected_time)
                or name != info.orig_filename.encode("utf-8" if flags & 0x800 else "cp437")):
            return f"the local header of member {info.filename!r} disagrees with the central directory"
        if not flags & 0x08 and (crc != info.CRC or (csize != 0xFFFFFFFF and csize != info.compress_size)
                                 or (usize != 0xFFFFFFFF and usize != info.file_size)):
            return f"the local header of member {info.filename!r} disagrees with the central directory"
        position += 30 + name_len + extra_len + info.compress_size
        if flags & 0x08:  # a data descriptor follows the data: trust the next offset
            position = next((i.header_offset for i in infos if i.header_offset > info.header_offset), start_dir)
    if position != start_dir:
        return "the last member does not end where the central directory starts"
    for info in listed:
        if data[position:position + 4] != b"PK\x01\x02":
            return "the central directory is damaged"
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, position + 28)
        encoded = info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")
        if (name_len, extra_len, comment_len) != (len(encoded), len(info.extra), len(info.comment)):
            return f"the central-directory entry of member {info.filename!r} is damaged"
        position += 46 + name_len + extra_len + comment_len
    if position != eocd:
        return "the central directory does not end where the end-of-archive record starts"
    shared = {(i.create_system, i.create_version, i.internal_attr, i.external_attr, i.volume) for i in infos}
    if len(shared) > 1:
        return "the central-directory entries disagree with each other (a damaged entry)"
    return None
