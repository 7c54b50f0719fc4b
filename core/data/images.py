"""The one guarded image decoder: every image CNN Studio did not make itself is read here (uploads on every
page, image-folder data sets and their zips, Tiny ImageNet, Flickr8k).

- Bombs are refused by their pixel count from the header, before any pixel is decoded.
- EXIF orientation is applied (a phone photo shows upright, as its owner saw it).
- 16-bit and 32-bit integer images are scaled by their format's range (0-65535 -> 0-255), float images by
  their real range ([0, 1] as is, anything else stretched from its minimum to its maximum), so a 16-bit PNG
  is not clipped to white.
- Transparency is composited onto a background that contrasts with what is drawn: dark ink on a transparent
  background lands on white, light ink on black, so a drawing keeps its strokes whatever colour they are
  (the page then gives the model the polarity its data has: white ink on black for MNIST-style data).
  A fully transparent image is refused: there is nothing in it.
- The first frame of an animation is used.
Result: uint8 RGB (H, W, 3). `ImageError` (a ValueError) says in words what was wrong.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import ProjectError

MAX_PIXELS = 40_000_000  # ~ a 7000 x 5700 photo; larger images are refused before decoding
FORMATS = "PNG, JPEG, BMP, GIF, WebP or TIFF"
READ = {"PNG", "JPEG", "MPO", "BMP", "DIB", "GIF", "WEBP", "TIFF"}  # Pillow's names; others (EPS runs Ghostscript,
# PDF, PSD, ICO, ...) are refused by name before any decoding


class ImageError(ProjectError, ValueError):
    """An image refused with a reason a user can act on."""


def _png_checksums(data: bytes) -> None:
    """Refuse a PNG whose chunks fail their CRC-32 (Pillow decodes damaged pixel data without a word)."""
    import struct
    import zlib

    at = 8
    while at + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        end = at + 12 + length
        if end > len(data):
            return  # a truncated chunk: the decoder says so
        if zlib.crc32(data[at + 4:end - 4]) & 0xFFFFFFFF != struct.unpack(">I", data[end - 4:end])[0]:
            raise ImageError(f"the PNG is damaged: its {kind.decode('latin-1')!r} chunk fails its checksum")
        at = end


def decode_image(data: bytes, *, size: int | None = None, grey: bool = False) -> np.ndarray:
    """Image bytes -> uint8 (H, W, 3) RGB, or (H, W) when `grey`; resized to size x size when `size` is given."""
    if not data:
        raise ImageError("the file is empty")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        _png_checksums(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if img.format not in READ:
                    raise ImageError(f"the file is in the {img.format or 'an unknown'} format; CNN Studio reads {FORMATS} "
                                     "pictures (save it as PNG or JPEG)")
                if img.width * img.height > MAX_PIXELS or img.width <= 0 or img.height <= 0:
                    raise ImageError(f"the image is {img.width}x{img.height} pixels; the limit is "
                                     f"{MAX_PIXELS // 1_000_000} megapixels")
                img.seek(0)
                rgb = _to_rgb(_upright(img))
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"the image has more pixels than the limit of {MAX_PIXELS // 1_000_000} megapixels "
                         f"({_reason(exc)})") from None
    except UnidentifiedImageError as exc:
        raise ImageError(f"this file is not a readable image ({_reason(exc)}); use a {FORMATS} picture") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:  # truncated or malformed data
        raise ImageError(f"the image data is damaged or truncated ({_reason(exc)})") from None
    out = Image.fromarray(rgb)
    if grey:
        out = out.convert("L")
    if size is not None and out.size != (size, size):
        out = out.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.uint8)


def peek_image(data: bytes) -> tuple[tuple[int, int], str] | None:
    """((width, height), mode) from an image's header without decoding its pixels; None if it is no image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                return img.size, img.mode
    except Exception:  # noqa: BLE001 - anything unreadable is simply not an image here
        return None


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0][:120] if str(exc) else ""
    return text or "unknown format"


def _upright(img: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says (a broken EXIF block is ignored, the pixels are kept)."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - malformed EXIF: use the pixels as stored
        return img


def _scaled(values: np.ndarray, mode: str) -> np.ndarray:
    """Integer or float pixels -> float32 in [0, 1] by the format's range (floats by their real range)."""
    v = values.astype(np.float64)
    if mode.startswith("I;16") or (mode == "I" and v.min() >= 0 and v.max() <= 65535):
        return (v / 65535).astype(np.float32)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        raise ImageError("the image holds no finite pixel values")
    v = np.nan_to_num(v, nan=float(finite.min()), posinf=float(finite.max()), neginf=float(finite.min()))
    if mode == "F" and finite.min() >= 0 and finite.max() <= 1:
        return v.astype(np.float32)
    low, high = float(finite.min()), float(finite.max())
    return ((v - low) / (high - low) if high > low else np.zeros_like(v)).astype(np.float32)


def _to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        grey = (_scaled(np.asarray(img), mode) * 255).round().astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info) or (
        mode in ("L", "RGB") and "transparency" in img.info)
    if not has_alpha:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)
    rgba = np.asarray(img.convert("RGBA"), dtype=np.float32)
    alpha = rgba[..., 3:] / 255
    opaque = alpha[..., 0] > 0.5
    if not opaque.any():
        raise ImageError("the image is fully transparent: there is nothing in it to classify")
    ink = rgba[..., :3][opaque].mean()  # how bright what is drawn is
    background = 255.0 if ink < 128 else 0.0
    return (rgba[..., :3] * alpha + background * (1 - alpha)).round().clip(0, 255).astype(np.uint8)
