"""Image transformations with Pillow, off the event loop, with bounds on input and output.

Options follow Supabase's: width/height (1..2500), resize cover|contain|fill (default cover),
quality 20..100 (default 80), format origin|webp|avif. Without a format the output follows the
client's Accept header like Supabase's imgproxy (WebP detection on, AVIF detection off): WebP when
Accept lists image/webp, otherwise the source format; `origin` always keeps the source format.
"""

from __future__ import annotations

import asyncio
import functools
import io
from dataclasses import dataclass
from typing import Any, Mapping

from PIL import Image, ImageOps, features

from ownbase.storage import errors

MAX_DIMENSION = 2500
MAX_INPUT_BYTES = 100 * 1024 * 1024
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif",
           "AVIF": "image/avif"}
FORMAT_OPTIONS = ("origin", "webp", "avif")


@functools.cache
def avif_supported() -> bool:
    """Whether this Pillow can write AVIF (wheels since Pillow 11.3 can; source builds may not)."""
    try:
        return bool(features.check("avif"))
    except Exception:  # noqa: BLE001 - an old Pillow without the feature name means no AVIF
        return False


def _unsupported_avif() -> errors.StorageError:
    return errors.invalid_request("format avif is not supported by this server (Pillow lacks AVIF support)")


@dataclass(frozen=True)
class Transform:
    width: int | None = None
    height: int | None = None
    resize: str = "cover"
    quality: int = 80
    # None: not given, so the output format is negotiated from the request's Accept header.
    format: str | None = None

    @property
    def empty(self) -> bool:
        return self.width is None and self.height is None and self.format is None and self.quality == 80

    def token_string(self) -> str:
        parts = []
        if self.height:
            parts.append(f"height:{self.height}")
        if self.width:
            parts.append(f"width:{self.width}")
        parts.append(f"resize:{self.resize}")
        parts.append(f"quality:{self.quality}")
        if self.format is not None:  # an explicit origin is kept: it turns Accept negotiation off
            parts.append(f"format:{self.format}")
        return ",".join(parts)


def _dim(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise errors.invalid_request(f"{name} must be an integer") from None
    if n < 1:
        raise errors.invalid_request(f"{name} must be >= 1")
    return min(n, MAX_DIMENSION)


def parse_transform(params: Mapping[str, Any]) -> Transform:
    resize = str(params.get("resize") or "cover").lower()
    if resize not in ("cover", "contain", "fill"):
        raise errors.invalid_request("resize must be one of cover, contain, fill")
    raw_format = params.get("format")
    fmt = None if raw_format in (None, "") else str(raw_format).strip().lower()
    if fmt is not None and fmt not in FORMAT_OPTIONS:
        raise errors.invalid_request("format must be one of origin, webp, avif")
    if fmt == "avif" and not avif_supported():
        raise _unsupported_avif()
    quality = params.get("quality")
    try:
        q = 80 if quality in (None, "") else int(quality)
    except (TypeError, ValueError):
        raise errors.invalid_request("quality must be an integer") from None
    if not 20 <= q <= 100:
        raise errors.invalid_request("quality must be between 20 and 100")
    return Transform(_dim(params.get("width"), "width"), _dim(params.get("height"), "height"), resize, q, fmt)


def parse_token_transform(value: str) -> Transform:
    params: dict[str, str] = {}
    for part in value.split(","):
        k, _, v = part.partition(":")
        if k:
            params[k.strip()] = v.strip()
    return parse_transform(params)


def accepts(accept: str | None, mime: str) -> bool:
    """Whether an Accept header lists `mime` itself with a non-zero q (wildcards do not count:
    imgproxy's detection looks for the type by name, and `*/*` clients may not decode WebP)."""
    if not accept:
        return False
    for item in accept.split(","):
        media, *params = item.split(";")
        if media.strip().lower() != mime:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 1.0
        if q > 0:
            return True
    return False


def negotiate(t: Transform, accept: str | None) -> tuple[Transform, bool]:
    """The transform with its output format settled, and whether that depended on Accept
    (then the response must carry `Vary: Accept`)."""
    if t.format is not None:
        return t, False
    fmt = "webp" if accepts(accept, "image/webp") else "origin"
    return Transform(t.width, t.height, t.resize, t.quality, fmt), True


SNIFF_BYTES = 4096
# What may come before an SVG's root element: an XML declaration, comments, a doctype.
_PROLOGUE = ((b"<?xml", b"?>"), (b"<!--", b"-->"), (b"<!doctype", b">"))


def _is_svg(head: bytes) -> bool:
    """An SVG document: its prologue skipped in one linear pass (no backtracking regex on
    client bytes), then the ``<svg`` root element."""
    text = head[:SNIFF_BYTES].removeprefix(b"\xef\xbb\xbf").lower()
    pos = 0
    while True:
        while pos < len(text) and text[pos:pos + 1].isspace():
            pos += 1
        for start, end in _PROLOGUE:
            if text.startswith(start, pos):
                close = text.find(end, pos + len(start))
                if close < 0:
                    return False
                pos = close + len(end)
                break
        else:
            return text.startswith(b"<svg", pos) and text[pos + 4:pos + 5] in (b" ", b">", b"\t", b"\n", b"\r", b"/")


def sniff(head: bytes) -> str | None:
    """What the first bytes of an object are, whatever content type it was stored with (as
    Supabase's image service decides): ``"svg"``, ``"raster"`` (a format Pillow can open), or None."""
    if _is_svg(head):
        return "svg"
    Image.init()
    prefix = head[:16]
    for _, accept in Image.OPEN.values():
        try:
            if accept is not None and accept(prefix):
                return "raster"
        except Exception:  # noqa: BLE001 - a plugin's check that needs more bytes than there are
            continue
    return None


def _render(data: bytes, t: Transform, max_pixels: int) -> tuple[bytes, str]:
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > max_pixels:
            raise errors.invalid_request(f"Image is too large to transform (over {max_pixels} pixels)")
        img.draft("RGB", (t.width or img.width, t.height or img.height))
        img.load()
    except errors.StorageError:
        raise
    except Exception:  # noqa: BLE001 - anything Pillow cannot decode is not an image for us
        raise errors.not_an_image() from None
    src_format = img.format or "PNG"
    img = ImageOps.exif_transpose(img) or img
    w, h = t.width, t.height
    if w or h:
        if not w:
            w = max(1, round(img.width * h / img.height)) if t.resize != "fill" else img.width
        if not h:
            h = max(1, round(img.height * w / img.width)) if t.resize != "fill" else img.height
        if t.resize == "fill":
            img = img.resize((w, h), Image.Resampling.LANCZOS)
        elif t.resize == "contain":
            img = ImageOps.contain(img, (w, h), Image.Resampling.LANCZOS)
        else:
            img = ImageOps.fit(img, (w, h), Image.Resampling.LANCZOS)
    if t.format == "webp":
        out_format = "WEBP"
    elif t.format == "avif":
        if not avif_supported():
            raise _unsupported_avif()
        out_format = "AVIF"
    else:
        out_format = src_format if src_format in FORMATS else "PNG"
    if out_format == "JPEG" and img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    buf = io.BytesIO()
    save_args: dict[str, Any] = {}
    if out_format in ("JPEG", "WEBP", "AVIF"):
        save_args["quality"] = t.quality
    try:
        img.save(buf, format=out_format, **save_args)
    except KeyError:  # Pillow without a writer for the format (checked above; kept as a backstop)
        raise errors.invalid_request(f"format {out_format.lower()} is not supported by this server") from None
    return buf.getvalue(), FORMATS[out_format]


async def render(data: bytes, t: Transform, max_pixels: int) -> tuple[bytes, str]:
    """Render with a settled format (see `negotiate`); a format of None keeps the source's."""
    return await asyncio.to_thread(_render, data, t, max_pixels)
