"""Trust core: who the principals are (roster), their keys, and the statements they sign.

Authenticity is decided here (key in the roster, signature, expiry, binding,
replay); who may do what is decided by the Cedar policies in governance.policy.
"""

from governance.trust.demo import demo_principals
from governance.trust.keys import (
    KeyFileError,
    generate_key_pair,
    load_private_key,
    public_key_line,
    signing_key_path,
    write_private_key,
)
from governance.trust.roster import ROLES, Principal, Roster, RosterError, UnknownPrincipal
from governance.trust.statements import SignedStatement, Statement, StatementFormatError, sign
from governance.trust.store import RecordedStatement, StatementRefused, StatementStore

__all__ = [
    "KeyFileError",
    "Principal",
    "ROLES",
    "RecordedStatement",
    "Roster",
    "RosterError",
    "SignedStatement",
    "Statement",
    "StatementFormatError",
    "StatementRefused",
    "StatementStore",
    "UnknownPrincipal",
    "demo_principals",
    "generate_key_pair",
    "load_private_key",
    "public_key_line",
    "sign",
    "signing_key_path",
    "write_private_key",
]
