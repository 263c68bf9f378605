"""Limits on files that come from outside, so that no upload can hurt the service.

An upload is streamed to a temporary file as it arrives, and refused (413) the moment it passes the
size limit: it is never held whole in memory first. A zip is judged from its central directory before
anything is extracted — member count, total uncompressed size, each member's compression ratio, and
member names (no absolute paths, no ``..``, no symlinks) — and then extracted with a byte count
that stops at the declared sizes. The vertex limit is applied by the readers while they read
(``gis.io.readers``), before a geometry is built.

Every upload path uses the same ``UploadLimits``: the pre-review red-line upload, the INP upload,
and ``govgis import`` (a local file: no size limits, the same zip checks).
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import zipfile
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from gis.errors import InvalidParameter, PayloadTooLarge
from gis.settings import Settings

BLOCK = 1 << 20  # bytes read and written at a time
RATIO_FREE_BYTES = 1 << 20  # members smaller than this are not judged by their compression ratio
_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,10}$")


@dataclass(frozen=True)
class UploadLimits:
    """What one incoming file may be. ``None`` means no limit of that kind."""

    max_bytes: int | None  # the file as sent
    max_uncompressed_bytes: int | None  # all members of a zip together, once extracted
    max_members: int  # entries in a zip
    max_ratio: float  # uncompressed ÷ compressed size of one zip member
    max_vertices: int | None  # coordinates in a red line

    @classmethod
    def for_service(cls, settings: Settings) -> UploadLimits:
        """The limits of files sent to the HTTP service."""
        service = settings.service
        return cls(max_bytes=service.max_upload_bytes, max_uncompressed_bytes=service.max_upload_uncompressed_bytes,
                   max_members=service.max_zip_members, max_ratio=service.max_zip_ratio,
                   max_vertices=service.max_query_vertices)

    @classmethod
    def for_local_files(cls, settings: Settings) -> UploadLimits:
        """The limits of a file the operator imports on the server: none on size, the same zip checks."""
        service = settings.service
        return cls(max_bytes=None, max_uncompressed_bytes=None, max_members=service.max_zip_members,
                   max_ratio=service.max_zip_ratio, max_vertices=None)


class SpooledUpload:
    """An upload held in a temporary file (deleted by ``close`` or at the end of a ``with`` block)."""

    def __init__(self, path: Path, size: int, filename: str | None) -> None:
        self.path, self.size, self.filename = path, size, filename

    def read_head(self, size: int = 4096) -> bytes:
        """The first bytes, to recognise a format from its content."""
        with self.path.open("rb") as handle:
            return handle.read(size)

    def text(self, what: str = "the file") -> str:
        """The upload as text: UTF-8 (with or without BOM), else GB18030 (GBK), else InvalidParameter."""
        raw = self.path.read_bytes()
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError:
                continue
        raise InvalidParameter(f"{what} is neither UTF-8 nor GBK text: save it as UTF-8")

    def close(self) -> None:
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> SpooledUpload:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _too_big(limit: int, what: str = "the uploaded file") -> PayloadTooLarge:
    return PayloadTooLarge(f"{what} is larger than the limit of {limit:,} bytes "
                           "(GOVGIS_MAX_UPLOAD_BYTES): send a smaller file or split it")


def _suffix(filename: str | None) -> str:
    """The file name's extension for the temporary file (readers go by it), if it is a plain one."""
    suffix = PurePosixPath((filename or "").replace("\\", "/")).suffix
    return suffix.lower() if _SAFE_SUFFIX.match(suffix) else ""


class _Spool:
    """Writes blocks to a temporary file, refusing once the total passes the limit."""

    def __init__(self, limits: UploadLimits, filename: str | None) -> None:
        self.limits, self.filename = limits, filename
        handle, name = tempfile.mkstemp(prefix="govgis-upload-", suffix=_suffix(filename))
        self.file = os.fdopen(handle, "wb")
        self.path = Path(name)
        self.size = 0

    def write(self, block: bytes) -> None:
        self.size += len(block)
        if self.limits.max_bytes is not None and self.size > self.limits.max_bytes:
            self.abandon()
            raise _too_big(self.limits.max_bytes)
        self.file.write(block)

    def finish(self) -> SpooledUpload:
        self.file.close()
        return SpooledUpload(self.path, self.size, self.filename)

    def abandon(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


def spool_chunks(chunks: Iterable[bytes], limits: UploadLimits, *, filename: str | None = None) -> SpooledUpload:
    """Write an upload that arrives in pieces to a temporary file, within ``limits.max_bytes``."""
    spool = _Spool(limits, filename)
    try:
        for chunk in chunks:
            spool.write(chunk)
    except BaseException:
        spool.abandon()
        raise
    return spool.finish()


async def spool_stream(chunks: AsyncIterable[bytes], limits: UploadLimits, *,
                       filename: str | None = None) -> SpooledUpload:
    """``spool_chunks`` for a request body read asynchronously (e.g. Starlette's ``request.stream()``)."""
    spool = _Spool(limits, filename)
    try:
        async for chunk in chunks:
            spool.write(chunk)
    except BaseException:
        spool.abandon()
        raise
    return spool.finish()


def spool_file(source: BinaryIO, limits: UploadLimits, *, filename: str | None = None) -> SpooledUpload:
    """Copy an open binary file (e.g. a multipart upload's ``UploadFile.file``) to a temporary file in
    blocks, within ``limits.max_bytes``."""
    return spool_chunks(iter(lambda: source.read(BLOCK), b""), limits, filename=filename)


def spool_bytes(content: bytes, limits: UploadLimits, *, filename: str | None = None) -> SpooledUpload:
    """An upload already in memory (a form field), written to a temporary file within the limit."""
    if limits.max_bytes is not None and len(content) > limits.max_bytes:
        raise _too_big(limits.max_bytes)
    return spool_chunks([content], limits, filename=filename)


# --- zips -----------------------------------------------------------------------------------------

def member_path(name: str) -> PurePosixPath:
    """A zip member's name as a relative path that stays inside the folder it is extracted to.

    Refuses absolute names, drive letters, ``..`` anywhere (``x/..`` included) and NUL bytes: a zip
    made to write outside its folder is refused as a whole, not repaired.
    """
    unified = name.replace("\\", "/")
    parts = [p for p in unified.split("/") if p not in ("", ".")]
    if (not parts or "\x00" in name or unified.startswith("/") or re.match(r"^[A-Za-z]:", unified)
            or ".." in parts):
        raise InvalidParameter(f"the zip holds a member named {name[:80]!r}, which points outside the archive "
                               "(absolute path or '..'): zip the files themselves, with plain names")
    return PurePosixPath(*parts)


def check_zip(path: Path, limits: UploadLimits) -> list[zipfile.ZipInfo]:
    """The zip's file members after checking its central directory against ``limits``; nothing is
    decompressed. Raises PayloadTooLarge (413) for too many or too big members, InvalidParameter (400)
    for an unreadable zip, unsafe names, symlinks or encrypted members."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise InvalidParameter("the upload is not a valid .zip archive: zip the files again (ZIP, deflate)") from None
    with archive:
        infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise PayloadTooLarge(f"the zip holds {len(infos):,} entries, more than the limit of {limits.max_members} "
                              "(GOVGIS_MAX_ZIP_MEMBERS): zip only the files of one data set")
    members = []
    total = 0
    for info in infos:
        member_path(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise InvalidParameter(f"the zip member {info.filename[:80]!r} is a symbolic link: zip the file itself")
        if info.flag_bits & 0x1:
            raise InvalidParameter(f"the zip member {info.filename[:80]!r} is encrypted: send it without a password")
        if info.is_dir():
            continue
        total += info.file_size
        if limits.max_uncompressed_bytes is not None and total > limits.max_uncompressed_bytes:
            raise PayloadTooLarge(f"the zip's files add up to more than {limits.max_uncompressed_bytes:,} bytes once "
                                  "extracted (GOVGIS_MAX_UPLOAD_UNCOMPRESSED_BYTES): send a smaller data set")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FREE_BYTES and ratio > limits.max_ratio:
            raise PayloadTooLarge(f"the zip member {info.filename[:80]!r} expands {ratio:,.0f} times "
                                  f"(limit {limits.max_ratio:g}, GOVGIS_MAX_ZIP_RATIO): that is not a data file")
        members.append(info)
    return members


def extract_zip(path: Path, destination: Path, limits: UploadLimits) -> list[Path]:
    """Extract a checked zip into ``destination`` (which must exist), block by block, never writing
    more than each member declares. Returns the extracted files."""
    members = check_zip(path, limits)
    root = destination.resolve()
    written: list[Path] = []
    with zipfile.ZipFile(path) as archive:
        for info in members:
            target = root.joinpath(*member_path(info.filename).parts)
            if root not in target.parents:  # member_path guarantees it; a second look costs nothing
                raise InvalidParameter(f"the zip member {info.filename[:80]!r} points outside the archive")
            target.parent.mkdir(parents=True, exist_ok=True)
            left = info.file_size
            try:
                with archive.open(info) as source, target.open("xb") as sink:
                    while block := source.read(min(BLOCK, left + 1)):
                        left -= len(block)
                        if left < 0:  # the stream is longer than the directory says: a forged entry
                            raise InvalidParameter(f"the zip member {info.filename[:80]!r} is longer than its "
                                                   "directory entry says: the archive is damaged")
                        sink.write(block)
            except FileExistsError:
                raise InvalidParameter(f"the zip holds {info.filename[:80]!r} twice") from None
            except (zipfile.BadZipFile, EOFError, NotImplementedError, ValueError) as exc:
                raise InvalidParameter(f"the zip member {info.filename[:80]!r} cannot be extracted "
                                       f"({type(exc).__name__}): zip the files again") from None
            written.append(target)
    return written
