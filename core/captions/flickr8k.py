"""The Flickr8k layout: `Images/*.jpg` and `captions.txt` (`image,caption` lines), read with every problem
reported by line number and skipped, never fatal, and its images decoded for training."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.captions.captioning import tokenize
from core.data import DataError


@dataclass
class CaptionCorpus:
    images: dict[str, list[str]]  # image file name -> its captions
    problems: list[str] = field(default_factory=list)  # "line N: what is wrong", the rest still read
    folder: Path | None = None


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
MAX_CAPTIONS_BYTES = 64 * 2**20


def read_flickr8k(folder: str | Path) -> CaptionCorpus:
    """The standard Flickr8k layout: `folder/Images/*.jpg` and `folder/captions.txt` with a header
    `image,caption` and one `image,caption` line per caption (captions may contain commas). Malformed
    lines are reported with their line numbers and skipped; images missing from Images/ likewise."""
    folder = Path(folder)
    text_path, image_dir = folder / "captions.txt", folder / "Images"
    if not text_path.exists():
        raise DataError(f"{text_path} not found: a Flickr8k folder holds captions.txt and Images/")
    if not text_path.is_file():
        raise DataError(f"{text_path} is not a text file (a folder, a device or a pipe): a Flickr8k folder holds the "
                        "file captions.txt and the folder Images/")
    if text_path.stat().st_size > MAX_CAPTIONS_BYTES:
        raise DataError(f"{text_path} is {text_path.stat().st_size / 2**20:,.0f} MB; a captions file of up to "
                        f"{MAX_CAPTIONS_BYTES // 2**20} MB is read (Flickr8k's is 3 MB).")
    if not image_dir.is_dir():
        raise DataError(f"{image_dir} not found or not a folder: a Flickr8k folder holds captions.txt and Images/")
    present = {p.name for p in image_dir.iterdir()}
    corpus = CaptionCorpus({}, [], folder)
    raw = text_path.read_bytes()
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            line = line.decode("utf-8").strip()
        except UnicodeDecodeError:
            corpus.problems.append(f"line {number}: not UTF-8 text")
            continue
        if not line or (number == 1 and line.replace(" ", "").lower() == "image,caption"):
            continue
        name, sep, caption = line.partition(",")
        name, caption = name.strip(), caption.strip().strip('"').strip()
        if not sep:
            corpus.problems.append(f"line {number}: no comma between image and caption")
        elif not name.lower().endswith(IMAGE_SUFFIXES):
            corpus.problems.append(f"line {number}: {name[:40]!r} is not an image file name")
        elif not tokenize(caption):
            corpus.problems.append(f"line {number}: empty caption for {name}")
        elif name not in present:
            corpus.problems.append(f"line {number}: {name} is not in Images/")
        else:
            corpus.images.setdefault(name, []).append(caption)
    return corpus


def load_flickr8k(folder: str | Path, size: int = 64, log=print) -> tuple[torch.Tensor, list[list[str]], list[str]]:
    """Images of a Flickr8k-layout folder, centre-cropped and resized to size x size, with their captions,
    and every problem found (malformed caption lines, unreadable images): each is skipped, never fatal."""
    from core.data.images import decode_image
    from core.draw.preprocess import preprocess_photo

    corpus = read_flickr8k(folder)
    images, captions, problems = [], [], list(corpus.problems)
    for name, caps in sorted(corpus.images.items()):
        try:
            raw = decode_image((Path(folder) / "Images" / name).read_bytes())
            images.append(preprocess_photo(raw, size=size, channels=3))
            captions.append(caps)
        except (OSError, ValueError) as exc:
            problems.append(f"Images/{name}: {exc}")
    for p in problems[:20]:
        log(f"skipped: {p}")
    if not images:
        raise DataError(f"{folder}: no usable image with a caption (each line of captions.txt is IMAGE,CAPTION and the "
                        "image is in Images/)")
    return torch.from_numpy(np.stack(images)), captions, problems
