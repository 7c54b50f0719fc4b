"""Image-folder data sets, from a directory or a `.zip`: `train/<class>/*` and `test/<class>/*`.

Owns the layout rules and decoding. With no train/test split, `<class>/*` is divided 80/20 by a seeded
stratified split. Images are decoded once with Pillow (grey if every image is grey, else RGB), resized
to one square size (at most MAX_SIDE), and the decoded arrays are cached as `.npz` under the user cache,
keyed by the source's path, size and modification time. Zips are opened by the guarded reader
(`core.data.archive`) and images decoded by the guarded decoder (`core.data.images`); unreadable files
are skipped and counted in `notes`. `Dataset.problems()` lists classes missing from a split or too small.
"""
from __future__ import annotations

import hashlib
import os
from collections import Counter
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from core import paths
from core.data.archive import open_zip
from core.data.base import DataError, Dataset, MissingDataError, channel_stats, register_prefix, stratified_split
from core.data.images import ImageError, decode_image, peek_image

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
HOLDOUT_FRACTION = 0.2  # test share when the folder has no train/test split
MAX_SIDE = 512  # images are resized to at most this side: a data set of huge photos still fits in memory
MIN_SIDE = 4  # smaller images leave a network nothing to see (and a batch norm one value per channel)


MAX_FILES = 200_000  # files a data set folder may hold; a folder with more (the disk's root, say) is no data set
LAYOUT = "train/<class>/*.png and test/<class>/*.png (or <class>/*.png)"


def _walk(source: Path) -> list[str]:
    """The regular files under a folder (POSIX paths relative to it), without following links, entering special
    file systems' files or reading anything; DataError past MAX_FILES."""
    found = []
    for folder, dirs, files in os.walk(source, onerror=lambda exc: None):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in files:
            path = Path(folder) / f
            if not path.is_symlink() and _is_plain_file(path):
                found.append(path.relative_to(source).as_posix())
        if len(found) > MAX_FILES:
            raise DataError(f"{source} holds more than {MAX_FILES:,} files: it is not a data set folder. Point at a "
                            f"folder laid out {LAYOUT}.")
    return found


@contextmanager
def _open_source(source: Path):
    """(all file paths, POSIX and relative to the source; a function that reads one's bytes), from a folder
    or a zip opened by the guarded reader."""
    if source.is_dir():
        yield _walk(source), lambda n: (source / n).read_bytes()
    elif source.is_file():
        with open_zip(source) as archive:
            yield archive.names, archive.read
    else:
        raise MissingDataError(f"Image folder {source} does not exist.")


def _is_plain_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # unreadable (a process's cwd under /proc, a folder without permission): not an image
        return False


def _entries_two_deep(path: Path):
    """Entries at depths two and three under `path` (lazily, hidden ones left out), skipping whatever cannot
    be listed."""
    def children(folder: Path):
        try:
            with os.scandir(folder) as listing:
                names = [e.name for e in listing if not e.name.startswith(".")]
        except OSError:
            return []
        return [folder / n for n in sorted(names)]
    for depth in (2, 3):
        level = [path]  # the caller passes a resolved folder
        for _ in range(depth - 1):
            level = (g for c in level if _is_dir(c) for g in children(c))
        yield from (e for c in level if _is_dir(c) for e in children(c))


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir() and not path.is_symlink()
    except OSError:
        return False


def folder_problem(location: str) -> str | None:
    """Why `location` is no image-folder data set, found by looking at most two folders deep (a few thousand
    entries at most) for images laid out as LAYOUT: in train/ or test/ class folders, or in two or more class
    folders; None when it may be one."""
    path = Path(location).expanduser()
    if _is_plain_file(path):
        return None if path.suffix.lower() == ".zip" else f"{location[:80]!r} is a file but not a .zip of class folders"
    try:
        path = path.resolve()
    except (OSError, RuntimeError):  # a link loop
        return f"{location[:80]!r} cannot be read: it is not a folder or a .zip of class folders"
    if not _is_dir(path):
        return f"{location[:80]!r} does not exist: it is not a folder or a .zip of class folders"
    seen, classes = 0, set()
    for entry in _entries_two_deep(path):
        seen += 1
        if entry.suffix.lower() in IMAGE_EXTENSIONS and _is_plain_file(entry):
            parts = entry.relative_to(path).parts
            if len(parts) == 3 and parts[0] in ("train", "test"):
                return None
            if len(parts) == 2:
                classes.add(parts[0])
                if len(classes) >= 2:
                    return None
        if seen > 5_000:
            break
    return (f"{location[:80]!r} holds no images in two or more class folders; a data set folder is laid out "
            f"{LAYOUT}")


def class_files(source: str | bytes, limit: int, filename: str = "upload.zip") -> list[tuple[str, bytes]]:
    """[(class, file bytes)] of every image of a folder or zip of class folders (a path, or an uploaded zip's bytes
    named `filename`; train/ and test/ merged), read by the guarded readers; DataError past `limit` images or
    with none."""
    if isinstance(source, bytes):
        with open_zip(source, filename, max_total=MAX_UPLOAD_EXPANDED) as archive:
            return _class_files(archive.names, archive.read, filename, limit)
    with _open_source(Path(source).expanduser()) as (names, read):
        return _class_files(names, read, source, limit)


def _class_files(names: list[str], read, where: str, limit: int) -> list[tuple[str, bytes]]:
    entries = [e for split in _split_layout(names).values() for e in split]
    if len(entries) > limit:
        raise DataError(f"{where} holds {len(entries):,} images; at most {limit:,} are read here.")
    if not entries:
        raise DataError(f"{where} holds no images in class folders; lay it out {LAYOUT}.")
    return [(cls, read(name)) for name, cls in entries]


def _split_layout(names: list[str]) -> dict[str, list[tuple[str, str]]]:
    """{split: [(path, class)]} for 'train'/'test' (or 'all'), whatever folder prefix precedes them."""
    images = [n for n in names if PurePosixPath(n).suffix.lower() in IMAGE_EXTENSIONS
              and not any(part.startswith((".", "__MACOSX")) for part in PurePosixPath(n).parts)]
    by_split: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    for n in images:
        parts = PurePosixPath(n).parts
        if len(parts) >= 3 and parts[-3] in by_split:
            by_split[parts[-3]].append((n, parts[-2]))
    if by_split["train"]:
        return by_split
    flat = [(n, PurePosixPath(n).parts[-2]) for n in images if len(PurePosixPath(n).parts) >= 2]
    return {"all": flat}


def _cache_path(source: Path, size: int | None) -> Path:
    stat = source.stat()
    key = f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{size}|v1"
    return paths.cache_dir("folders") / (hashlib.sha1(key.encode()).hexdigest()[:20] + ".npz")


def load_image_folder(path: str, name: str | None = None, image_size: int | None = None, seed: int = 0) -> Dataset:
    """Read an image-folder data set (see the module docstring) into a `Dataset`."""
    source = Path(path).expanduser()
    with _open_source(source) as (names, read):
        return _load(source, names, read, name, image_size, seed)


def _load(source: Path, names: list[str], read, name: str | None, image_size: int | None, seed: int) -> Dataset:
    layout = _split_layout(names)
    entries = [e for split in layout.values() for e in split]
    if not entries:
        raise DataError(f"{source} holds no images in a class folder. Expected train/<class>/*.png and "
                        f"test/<class>/*.png (or <class>/*.png), with extensions {sorted(IMAGE_EXTENSIONS)}.")
    class_names = sorted({cls for _, cls in entries})
    if len(class_names) < 2:
        raise DataError(f"{source} has one class folder ({class_names[0]!r}); a classifier needs at least two. "
                        "Put each class's images in its own folder.")
    cache = _cache_path(source, image_size) if source.is_file() else None
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        notes = [str(n) for n in arrays.pop("notes")]
    else:
        arrays, notes = _decode_all(layout, read, class_names, image_size)
        if cache is not None:
            paths.replace_atomically(cache, lambda tmp: np.savez(tmp, notes=np.array(notes, dtype=str), **arrays))
    if "all_x" in arrays:
        x, y = torch.from_numpy(arrays["all_x"]), torch.from_numpy(arrays["all_y"])
        keep, held = stratified_split(y, HOLDOUT_FRACTION, seed)
        train_x, train_y, test_x, test_y = x[keep], y[keep], x[held], y[held]
        notes.append(f"no train/test folders: {int(HOLDOUT_FRACTION * 100)}% of each class held out as test")
    else:
        train_x, train_y = torch.from_numpy(arrays["train_x"]), torch.from_numpy(arrays["train_y"])
        test_x, test_y = torch.from_numpy(arrays["test_x"]), torch.from_numpy(arrays["test_y"])
    mean, std = channel_stats(train_x)
    return Dataset(name=name or f"folder:{source}", train_x=train_x, train_y=train_y, test_x=test_x,
                   test_y=test_y, class_names=class_names, mean=mean, std=std, hflip=False,
                   source=str(source), notes=notes)


def _decode_all(layout, read, class_names, image_size):
    sizes, modes, tried = Counter(), set(), 0
    for n, _ in [e for s in layout.values() for e in s]:  # the first 64 readable images, however many are junk
        tried += 1
        if (header := peek_image(read(n))) is not None:
            sizes[header[0]] += 1
            modes.add(header[1])
        if sum(sizes.values()) >= 64:
            break
    if not sizes:
        raise DataError(f"None of the {tried:,} files named like images could be read as an image (PNG, JPEG, BMP, "
                        "GIF, WebP or TIFF): they are damaged or are not images.")
    grey = modes <= {"L", "1", "I", "I;16", "I;16B", "I;16L", "F", "LA"}
    size = min(image_size or max(sizes.most_common(1)[0][0]), MAX_SIDE)
    if size < MIN_SIDE:
        raise DataError(f"the images are {size}x{size} pixels (the most common size); a data set's images need at least "
                        f"{MIN_SIDE} pixels a side for a convolutional network to see anything.")
    index = {c: i for i, c in enumerate(class_names)}
    arrays, skipped = {}, []
    for split, entries in layout.items():
        if not entries:
            raise DataError(f"There is a train/ folder but no {split}/ folder with images: add {split}/<class>/ "
                            "images, or put the class folders at the top level (20% of each class is then held out).")
        xs, ys = [], []
        for n, cls in entries:
            try:
                xs.append(decode_image(read(n), size=size, grey=grey))
                ys.append(index[cls])
            except ImageError as exc:
                skipped.append(f"{n} ({exc})")
        if not xs:
            raise DataError(f"The {split} split has no readable images" + (f", e.g. {skipped[-1]}." if skipped else "."))
        x = np.stack(xs)
        arrays[f"{split}_x"] = np.ascontiguousarray(x[:, None] if grey else x.transpose(0, 3, 1, 2))
        arrays[f"{split}_y"] = np.array(ys, dtype=np.int64)
    notes = [f"skipped {len(skipped)} unreadable file(s), e.g. {skipped[0]}"] if skipped else []
    return arrays, notes


MAX_UPLOAD_BYTES = 1024 * 2**20
MAX_UPLOAD_EXPANDED = 2 * 2**30  # an uploaded data set may expand to this much


def store_uploaded_zip(data: bytes, filename: str, root: str | Path) -> str:
    """Save an uploaded image-folder .zip under `root` (named by its content hash) and check that it reads
    as a data set; returns the registry name `folder:PATH` a run can use. Raises DataError with advice."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise DataError(f"{filename} is {len(data) / 2**20:.0f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB.")
    with open_zip(data, filename, max_total=MAX_UPLOAD_EXPANDED):
        pass  # refused here, before it is stored, if the archive is unreadable, a bomb or encrypted
    stem = paths.safe_name(Path(filename).stem or "upload", fallback="upload")
    path = Path(root) / f"{stem}_{hashlib.sha256(data).hexdigest()[:10]}.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(data)
    try:
        load_image_folder(str(path))
    except Exception as exc:  # noqa: BLE001 - whatever it was, the stored copy goes and the user gets words
        path.unlink(missing_ok=True)
        reason = str(exc) if isinstance(exc, DataError) else f"it could not be read as a data set ({exc})"
        raise DataError(reason.replace(str(path), filename)) from None
    return f"folder:{path}"


register_prefix("folder:", load_image_folder, folder_problem)
