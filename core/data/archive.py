"""The one guarded way CNN Studio opens a zip archive it did not write: uploaded models, uploaded data sets,
image-folder zips in the data directory, Tiny ImageNet.

Before any member is read, the archive's directory is checked: the number of members and their total
uncompressed size are within limits (a few MB that expand to gigabytes are refused, not extracted), no
member is encrypted or compressed with a method this Python cannot read (each refused by name), and no
member name escapes the folder it would be extracted to. Reads never return more than a member declares
(zipfile stops at the declared size and checks the CRC). Extraction goes to a temporary folder that is
removed when the `with` block ends, also when an error is raised.
"""
from __future__ import annotations

import io
import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from core.data.base import DataError

MAX_MEMBERS = 300_000  # Tiny ImageNet holds ~120k files
MAX_TOTAL_BYTES = 4 * 2**30  # uncompressed; the largest real data set zip here expands to ~0.5 GB
MAX_MEMBER_BYTES = 512 * 2**20  # one file; no image or weight file CNN Studio reads comes near it
READABLE = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2",
            zipfile.ZIP_LZMA: "lzma"}


class ArchiveError(DataError):
    """An archive refused before anything in it was read; the message names the member and the problem."""


class GuardedZip:
    """A checked zip archive: `names` (files only), `read(name)`, `size(name)`, `extract(names, folder)`."""

    def __init__(self, archive: zipfile.ZipFile, label: str):
        self._zip, self.label = archive, label
        self.infos = {i.filename: i for i in archive.infolist() if not i.is_dir()}
        self.names = list(self.infos)

    def read(self, name: str) -> bytes:
        try:
            return self._zip.read(self.infos[name])
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, ValueError) as exc:
            raise ArchiveError(f"{self.label}: member {name!r} cannot be read ({exc}); the archive is damaged.") from None

    def size(self, name: str) -> int:
        return self.infos[name].file_size

    def extract(self, names: list[str], folder: Path) -> None:
        """Write `names` below `folder` (their paths were checked to stay inside it)."""
        for name in names:
            target = folder / PurePosixPath(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.read(name))


def check_members(archive: zipfile.ZipFile, label: str, max_total: int, max_members: int,
                  max_member: int = MAX_MEMBER_BYTES) -> None:
    """Refuse an archive whose directory shows a bomb, an encrypted or unreadable member, or an unsafe path."""
    infos = archive.infolist()
    if len(infos) > max_members:
        raise ArchiveError(f"{label} holds {len(infos):,} entries; the limit is {max_members:,}.")
    total = sum(i.file_size for i in infos)
    if total > max_total:
        raise ArchiveError(f"{label} would expand to {total / 2**20:,.0f} MB; the limit is "
                           f"{max_total / 2**20:,.0f} MB. It is refused without being unpacked.")
    for info in infos:
        if info.file_size > max_member:
            raise ArchiveError(f"{label}: member {info.filename!r} would expand to {info.file_size / 2**20:,.0f} MB; "
                               f"the limit for one file is {max_member / 2**20:,.0f} MB. Nothing was unpacked.")
        if info.flag_bits & 0x1:
            raise ArchiveError(f"{label}: member {info.filename!r} is encrypted. Zip it again without a password.")
        if info.compress_type not in READABLE:
            raise ArchiveError(f"{label}: member {info.filename!r} uses compression method {info.compress_type}, "
                               f"which cannot be read here; use one of {', '.join(READABLE.values())} (plain zip "
                               "tools use deflate).")
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or ":" in info.filename:
            raise ArchiveError(f"{label}: member {info.filename!r} points outside the archive's folder.")


@contextmanager
def open_zip(source: bytes | str | Path, label: str = "", *, max_total: int = MAX_TOTAL_BYTES,
             max_members: int = MAX_MEMBERS):
    """`with open_zip(bytes or path) as z:` a GuardedZip; ArchiveError (a DataError) with the reason otherwise."""
    label = label or (Path(source).name if isinstance(source, (str, Path)) else "the archive")
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ArchiveError(f"{label} is not a readable zip archive ({exc}): truncated, or another format.") from None
    with archive:
        check_members(archive, label, max_total, max_members)
        yield GuardedZip(archive, label)


@contextmanager
def temporary_folder(prefix: str = "cnn_studio_"):
    """A temporary folder that is removed when the block ends, whatever happens in it."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
