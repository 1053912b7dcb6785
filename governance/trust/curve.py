"""Is 32-byte string a sound Ed25519 public key?

OpenSSL (and so `cryptography`) loads any 32 bytes as an Ed25519 public key and
verifies against it. With a small-order key such as the identity point
(01 00 .. 00), the signature R = identity, S = 0 verifies for EVERY message:
a roster entry holding such a key would let anyone sign as that principal.
So a roster key must decode (RFC 8032, section 5.1.3) to a point of prime
order L: not the identity, not of small or mixed order.
"""

from __future__ import annotations

_P = 2**255 - 19
_D = -121665 * pow(121666, -1, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_L = 2**252 + 27742317777372353535851937790883648493

# Extended twisted Edwards coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, xy = T/Z.
_IDENTITY = (0, 1, 1, 0)


def is_prime_order_point(raw: bytes) -> bool:
    """True when `raw` is the canonical encoding of a curve point of order L."""
    point = _decode(raw)
    if point is None:
        return False
    return not _is_identity(point) and _is_identity(_multiply(point, _L))


def _decode(raw: bytes) -> tuple[int, int, int, int] | None:
    if len(raw) != 32:
        return None
    encoded = int.from_bytes(raw, "little")
    sign, y = encoded >> 255, encoded & ((1 << 255) - 1)
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, -1, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P or (x == 0 and sign):
        return None
    if x & 1 != sign:
        x = _P - x
    return (x, y, 1, x * y % _P)


def _add(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    # RFC 8032, section 5.1.4 (complete addition law for a = -1).
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % _P
    bb = (y1 + x1) * (y2 + x2) % _P
    cc = 2 * t1 * t2 * _D % _P
    dd = 2 * z1 * z2 % _P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _multiply(point: tuple[int, int, int, int], scalar: int) -> tuple[int, int, int, int]:
    result = _IDENTITY
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _is_identity(point: tuple[int, int, int, int]) -> bool:
    x, y, z, _ = point
    return x % _P == 0 and (y - z) % _P == 0
