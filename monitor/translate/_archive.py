"""Unpacking a model archive (.zip, .argosmodel, .tar, .tar.gz/.xz/.bz2) without trusting it.

Every member is checked before one byte is written: only regular files and folders (no links,
devices, FIFOs or sparse files), relative paths with no `..`, no name twice, and sizes, member
count and compression ratio within the limits below. Only then is the data copied, by this
module rather than by zipfile or tarfile, into a folder that did not exist before, each file
created anew (`O_EXCL | O_NOFOLLOW`) and counted as it is written, so a header that lies about
a size cannot write more than it declared. Nothing here depends on the interpreter's patch
level (tarfile's `filter="data"` is bypassed by CVE-2025-4517 on Python < 3.11.13).
"""

from __future__ import annotations

import lzma
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, cast

from monitor.translate._engine import ModelError

__all__ = ["LIMITS", "Limits", "extract"]

MAX_TOTAL = 8 << 30
"""8 GiB unpacked: twice the largest model the README suggests (MADLAD-400 3B int8, ~3 GB;
NLLB-200 600M int8 is ~600 MB, an Argos package ~100 MB), far from a whole disk."""
MAX_MEMBERS = 10_000
"""A CTranslate2 model has under 10 files, an Argos package a few dozen with its Stanza data."""
MAX_RATIO = 200
"""Weights and vocabularies compress 1.1-4 times; deflate reaches ~1000 only on filler (zeros).
Checked per zip member and for the whole archive (a tar's members share one stream)."""
RATIO_FROM = 1 << 20
"""The ratio is checked above 1 MiB: a small JSON or text file may compress very well."""
KEEP_FREE = 1 << 30
"""Left free on the disk after unpacking: the database usually shares the state directory,
and SQLite needs room for its WAL and journal."""
_MAX_PATH = 1024
_MAX_NAME = 255
_CHUNK = 1 << 20

_NOT_ALLOWED = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
    tarfile.GNUTYPE_SPARSE: "a sparse file",
}
_ZIP_KINDS = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
_ONLY = "a model archive may hold only files and folders"
# What reading a damaged or truncated archive raises (gzip.BadGzipFile is an OSError).
_DAMAGED = (tarfile.TarError, zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError)


@dataclass(frozen=True, slots=True)
class Limits:
    total: int = MAX_TOTAL
    members: int = MAX_MEMBERS
    ratio: int = MAX_RATIO
    keep_free: int = KEEP_FREE


LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class _Member:
    name: str
    """As the archive spells it, for messages."""
    parts: tuple[str, ...]
    folder: bool
    size: int


def extract(archive: Path, into: Path, limits: Limits = LIMITS) -> None:
    """Unpack `archive`, a zip (if `zipfile.is_zipfile`) or else a tar, into the new folder `into`.

    Raises:
        ModelError: naming the archive and the first member refused, damaged or over a limit.
            Nothing is written before every member has passed; after that, `into` may be left
            partly written, for the caller to remove with its staging folder.
    """
    size = archive.stat().st_size
    if zipfile.is_zipfile(archive):
        _extract_zip(archive, size, into, limits)
    else:
        _extract_tar(archive, size, into, limits)


def _extract_zip(archive: Path, size: int, into: Path, limits: Limits) -> None:
    with _reading(archive), zipfile.ZipFile(archive) as bundle:
        infos = bundle.infolist()
        if len(infos) > limits.members:
            raise _over_count(archive, limits)
        members = [_zip_member(archive, info, limits) for info in infos]
        _check(archive, members, size, into.parent, limits)
        into.mkdir()
        for info, member in zip(infos, members, strict=True):
            with _reading(archive, member), _create(archive, member, into) as out:
                if out is not None:
                    with bundle.open(info) as data:
                        _copy(archive, member, data, out)


def _extract_tar(archive: Path, size: int, into: Path, limits: Limits) -> None:
    with _reading(archive), tarfile.open(archive) as bundle:
        infos: list[tarfile.TarInfo] = []
        members: list[_Member] = []
        total = 0
        for info in bundle:  # stops at the first member over a limit, reading no further
            if len(infos) == limits.members:
                raise _over_count(archive, limits)
            members.append(_tar_member(archive, info))
            infos.append(info)
            total += members[-1].size
            _check_total(archive, total, size, limits)
        _check(archive, members, size, into.parent, limits)
        into.mkdir()
        for info, member in zip(infos, members, strict=True):
            with _reading(archive, member), _create(archive, member, into) as out:
                if out is not None:
                    # A regular member always has data: extractfile returns None for others.
                    with cast(IO[bytes], bundle.extractfile(info)) as data:
                        _copy(archive, member, data, out)


@contextmanager
def _reading(archive: Path, member: _Member | None = None) -> Iterator[None]:
    try:
        yield
    except _DAMAGED as exc:
        what = f"member {member.name!r} is damaged" if member else "is a damaged archive"
        raise ModelError(archive, f"{what} ({' '.join(str(exc).split())})") from exc


def _zip_member(archive: Path, info: zipfile.ZipInfo, limits: Limits) -> _Member:
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind in _ZIP_KINDS:
        raise _refused(archive, info.filename, f"is {_ZIP_KINDS[kind]}: {_ONLY}")
    if info.flag_bits & 0x1:
        raise _refused(archive, info.filename, "is encrypted")
    if info.compress_type not in _ZIP_METHODS:
        why = f"is compressed with method {info.compress_type}, which zipfile cannot read"
        raise _refused(archive, info.filename, why)
    folder = info.is_dir()
    parts = _parts(archive, info.filename, folder)
    packed = max(info.compress_size, 1)
    if info.file_size > RATIO_FROM and info.file_size > limits.ratio * packed:
        growth = f"{info.file_size // packed} times ({_size(info.file_size)} from {_size(packed)})"
        raise _refused(archive, info.filename, f"expands {growth}; the limit is {limits.ratio}")
    return _Member(info.filename, parts, folder, info.file_size)


def _tar_member(archive: Path, info: tarfile.TarInfo) -> _Member:
    if not (info.isdir() or info.isreg()) or info.issparse():
        what = _NOT_ALLOWED.get(info.type, f"of tar type {info.type!r}")
        raise _refused(archive, info.name, f"is {what}: {_ONLY}")
    folder = info.isdir()
    return _Member(
        info.name, _parts(archive, info.name, folder), folder, 0 if folder else info.size
    )


def _parts(archive: Path, name: str, folder: bool) -> tuple[str, ...]:
    path = PurePosixPath(name)  # drops "." and repeated slashes: "./nllb//x" is ("nllb", "x")
    if path.is_absolute():
        raise _refused(archive, name, "has an absolute path")
    if ".." in path.parts:
        raise _refused(archive, name, "climbs out of the archive ('..')")
    if "\\" in name:
        raise _refused(archive, name, "has a backslash in its path")
    too_long = len(name.encode(errors="surrogateescape")) > _MAX_PATH or any(
        len(part.encode(errors="surrogateescape")) > _MAX_NAME for part in path.parts
    )
    if too_long:
        why = f"has a path over {_MAX_PATH} bytes or a name over {_MAX_NAME}"
        raise _refused(archive, name, why)
    if not path.parts and not folder:
        raise _refused(archive, name, "is a file without a name")
    return path.parts


def _check(archive: Path, members: list[_Member], size: int, disk: Path, limits: Limits) -> None:
    """What needs all members at once: no name twice or both file and folder; total sizes."""
    files: set[tuple[str, ...]] = set()
    folders: set[tuple[str, ...]] = set()
    for member in members:
        if not member.folder:
            if member.parts in files:
                raise _refused(archive, member.name, "appears twice")
            files.add(member.parts)
        end = len(member.parts) if member.folder else len(member.parts) - 1
        folders.update(member.parts[:n] for n in range(1, end + 1))
    for member in members:
        if not member.folder and member.parts in folders:
            raise _refused(archive, member.name, "is both a file and a folder")
    total = sum(member.size for member in members)
    _check_total(archive, total, size, limits)
    free = shutil.disk_usage(disk).free
    if total > free - limits.keep_free:
        reason = (
            f"needs {_size(total)} on the disk, where {_size(free)} is free and "
            f"{_size(limits.keep_free)} must stay free for the database"
        )
        raise ModelError(archive, reason)


def _check_total(archive: Path, total: int, size: int, limits: Limits) -> None:
    if total > limits.total:
        reason = f"expands to more than {_size(limits.total)}, the limit for a model"
        raise ModelError(archive, reason)
    if total > RATIO_FROM and total > limits.ratio * max(size, 1):
        reason = f"expands more than {limits.ratio} times ({_size(total)} from {_size(size)})"
        raise ModelError(archive, reason)


@contextmanager
def _create(archive: Path, member: _Member, into: Path) -> Iterator[IO[bytes] | None]:
    """A member's folder (yields None), or its file, new, opened for writing."""
    target = into.joinpath(*member.parts)
    try:
        if member.folder:
            target.mkdir(parents=True, exist_ok=True)
            out = None
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Created, never opened through a link: `into` is new and holds only what we wrote.
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            out = os.fdopen(os.open(target, flags, 0o644), "wb")
    except OSError as exc:
        raise _unwritable(archive, member, exc) from exc
    if out is None:
        yield None
        return
    try:
        yield out
    finally:
        try:
            out.close()  # flushes: a full disk may show only here
        except OSError as exc:
            raise _unwritable(archive, member, exc) from exc


def _copy(archive: Path, member: _Member, data: IO[bytes], out: IO[bytes]) -> None:
    """Counts what the member really holds: a header may under-declare a size."""
    written = 0
    while chunk := data.read(_CHUNK):
        written += len(chunk)
        if written > member.size:
            why = f"holds more than the {member.size} bytes its header declares"
            raise _refused(archive, member.name, why)
        try:
            out.write(chunk)
        except OSError as exc:
            raise _unwritable(archive, member, exc) from exc
    if written != member.size:
        why = f"holds {written} bytes, not the {member.size} its header declares"
        raise _refused(archive, member.name, why)


def _refused(archive: Path, name: str, why: str) -> ModelError:
    return ModelError(archive, f"member {name!r} {why}")


def _unwritable(archive: Path, member: _Member, exc: OSError) -> ModelError:
    return ModelError(archive, f"member {member.name!r}: cannot write it: {exc.strerror}")


def _over_count(archive: Path, limits: Limits) -> ModelError:
    return ModelError(archive, f"holds more than {limits.members} members, the limit for a model")


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"
