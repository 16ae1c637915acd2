"""TOTP as GoTrue uses it (RFC 6238: SHA-1, 6 digits, 30-second steps, one step of skew), its
``otpauth://`` URI and the QR code SVG that authenticator apps scan."""

from __future__ import annotations

import hmac
import io
import time
from urllib.parse import quote, urlencode, urlsplit

import pyotp
import segno

PERIOD = 30
DIGITS = 6
SKEW = 1  # the previous, current and next step are accepted


def new_secret() -> str:
    """20 random bytes as unpadded base32 (32 characters), as GoTrue's secrets."""
    return pyotp.random_base32(32)


def default_issuer(site_url: str) -> str:
    return urlsplit(site_url).hostname or "ownbase"


def uri(secret: str, account: str, issuer: str) -> str:
    label = quote(f"{issuer}:{account}", safe=":@")
    query = urlencode({"algorithm": "SHA1", "digits": DIGITS, "issuer": issuer, "period": PERIOD,
                       "secret": secret})
    return f"otpauth://totp/{label}?{query}"


class TooLong(ValueError):
    """The URI does not fit in a QR code at error level H."""


def qr_svg(text: str) -> str:
    """The QR code as an SVG document (error level H, 3-pixel modules) with its XML declaration."""
    out = io.BytesIO()
    try:
        code = segno.make(text, error="h", micro=False, boost_error=False)
    except segno.DataOverflowError:
        raise TooLong(text) from None
    code.save(out, kind="svg", scale=3, xmldecl=True)
    return out.getvalue().decode()


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step whose code equals ``code`` (within the skew), or None. Every candidate is
    compared in constant time so timing tells nothing about which step was near."""
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    current = int((time.time() if now is None else now) // PERIOD)
    generator = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD)
    found = None
    for step in range(current - SKEW, current + SKEW + 1):
        if hmac.compare_digest(generator.generate_otp(step).encode(), code.encode()):
            found = step
    return found
