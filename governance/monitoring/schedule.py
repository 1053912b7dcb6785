"""When each model's scheduled retraining fires: its cron, shifted by a per-model offset within a window.

With every model on the same `retrain_cron`, fifty candidate runs queued in the same minute. Each model's
offset is `sha256(name) mod retrain_spread_minutes` minutes after the cron's time: fixed for a model (it
does not move when models are added or removed) and spread evenly over the window across models.
"""

from __future__ import annotations

import hashlib

MINUTES_A_DAY = 24 * 60


def offset_minutes(model: str, spread_minutes: int) -> int:
    if spread_minutes <= 0:
        return 0
    return int.from_bytes(hashlib.sha256(model.encode()).digest()[:8], "big") % spread_minutes


def spread_cron(cron: str, model: str, spread_minutes: int) -> str:
    """`cron` with its minute and hour moved `offset_minutes` later (the same day: the window may not cross
    midnight, `check_spread` refuses one that would)."""
    offset = offset_minutes(model, spread_minutes)
    if offset == 0:
        return cron
    minute, hour, *rest = cron.split()
    at = int(hour) * 60 + int(minute) + offset
    return " ".join([str(at % 60), str(at // 60), *rest])


def check_spread(cron: str, spread_minutes: int) -> None:
    """Refuse (ValueError, as config validation reports it) a window the cron's fixed time cannot be spread over."""
    if spread_minutes <= 0:
        return
    fields = cron.split()
    if len(fields) != 5 or not (fields[0].isdigit() and fields[1].isdigit()):
        raise ValueError(
            f"retrain_cron {cron!r}: spreading retraining over retrain_spread_minutes needs a fixed minute and "
            "hour (like '0 3 * * 1'); set retrain_spread_minutes: 0 to use this cron as is"
        )
    start = int(fields[1]) * 60 + int(fields[0])
    if start + spread_minutes > MINUTES_A_DAY:
        raise ValueError(
            f"retrain_cron {cron!r} with retrain_spread_minutes {spread_minutes}: the window would cross "
            "midnight (and the day of the cron); start earlier or spread over fewer minutes"
        )
