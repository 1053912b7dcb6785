"""Whole-ledger verifications for the console's verify page, run beside the page rather than inside it.

A verification reads and hashes every entry (about 0.8 s at 100,000 entries), longer than a page may take. The
page starts one, or joins the one running, waits a moment, and if it is not done answers with a page that
reloads itself until it is. A result is never reused for a later visit: each visit without an id starts (or
joins) a verification, and a result is shown only under its own id with the time its verification started.
Kept in this process's memory only; nothing is written.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from governance.ledger import Ledger, VerifyReport

KEEP = 16  # finished verifications whose page can still be reloaded


@dataclass
class Verification:
    id: str
    started: float  # time.time()
    done: threading.Event = field(default_factory=threading.Event)
    report: VerifyReport | None = None
    error: Exception | None = None


class Verifications:
    """At most one verification of `ledger` runs at a time; the last KEEP are kept by id."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, Verification] = OrderedDict()

    def start(self) -> Verification:
        """A new verification, or the one running (it reads the ledger as of its own start)."""
        with self._lock:
            running = next((v for v in self._kept.values() if not v.done.is_set()), None)
            if running is not None:
                return running
            started = Verification(secrets.token_urlsafe(12), time.time())
            self._kept[started.id] = started
            while len(self._kept) > KEEP:
                self._kept.popitem(last=False)  # the oldest: finished, as only the newest can be running
        threading.Thread(target=self._verify, args=(started,), name="console-ledger-verify", daemon=True).start()
        return started

    def get(self, verification_id: str) -> Verification | None:
        with self._lock:
            return self._kept.get(verification_id)

    def _verify(self, verification: Verification) -> None:
        try:
            verification.report = self._ledger.verify()
        except Exception as exc:  # shown by the page that asks for the result, as the console shows errors
            verification.error = exc
        finally:
            verification.done.set()
