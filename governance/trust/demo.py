"""Demo principals: throwaway keys and a roster inside the state directory.

The versioned roster (policies/roster.yaml) holds real people's public keys,
whose private keys live on their own machines. The demo cannot sign as them, so
it makes its own cast, each with a key under `settings.keys_dir` and a roster at
`settings.home / "roster.yaml"`. Re-running keeps every existing key.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from governance.settings import Settings
from governance.trust.keys import generate_key_pair, load_private_key, write_private_key
from governance.trust.roster import Principal, Roster

DEMO_ROSTER_VERSION = 1
DEMO_CAST: dict[str, tuple[str, ...]] = {
    "dana": ("data_scientist",),
    "ravi": ("model_risk_approver",),
    "rhea": ("model_risk_approver",),
    "paul": ("ml_platform",),
    "bea": ("business_owner",),
    "carl": ("compliance_manager",),
    "cora": ("compliance_manager",),
    "audrey": ("auditor",),
    "system": ("automation",),
}


def demo_key_path(settings: Settings, principal: str) -> Path:
    return settings.keys_dir / f"{principal}.key"


def demo_principals(settings: Settings) -> Path:
    """Create (or keep) the demo cast's keys and write their roster; return the roster's path."""
    cast = [Principal(name, frozenset(roles), _public_key(settings, name)) for name, roles in DEMO_CAST.items()]
    path = settings.home / "roster.yaml"
    header = (
        "Demo roster written by governance.trust.demo for this state directory only.\n"
        f"Private keys: {settings.keys_dir} (one NAME.key per principal, mode 0600).\n"
        "Never use these principals outside the demo."
    )
    Roster.write(path, version=DEMO_ROSTER_VERSION, principals=cast, header=header)
    return path


def _public_key(settings: Settings, name: str) -> Ed25519PublicKey:
    path = demo_key_path(settings, name)
    if path.exists():
        return load_private_key(path).public_key()
    private, public = generate_key_pair()
    # The default state dir (.govern/) sits inside the repository but is git-ignored.
    write_private_key(path, private, allow_git_ignored=True)
    return public
