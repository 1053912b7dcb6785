"""`govern init` (a state dir for a config anywhere) and `govern roster add` (grow the roster in force).

`init` validates the config (nothing is created from a bad one), makes sure its policy bundle resolves
(beside the config, else a copy of the bundled policies in the state dir, where an empty roster waits for
its principals) and prepares the state dir. `roster add` appends one principal with its roles and public
key to the roster in force, as a new roster version; only public keys are ever read.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from governance.cli.output import emit, fail
from governance.config import load_config
from governance.errors import GovernanceError
from governance.policy.bundle import PolicyBundle
from governance.settings import BUNDLED_POLICIES, Settings
from governance.trust.keys import parse_public_key_line, public_key_line
from governance.trust.roster import PRINCIPAL_NAME, Principal, Roster, RosterError, parse_roles

roster_app = typer.Typer(no_args_is_help=True, help="The roster in force: principals, roles and public keys.")
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def init(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Create (or bring up to date) the state dir for the config; copy the bundled policies into it when
    none sit beside the config."""
    settings: Settings = ctx.obj
    config = load_config(settings.config_path)  # a bad config creates nothing
    copied = False
    if settings.policies_override is None and not settings.policies_dir.is_dir():
        if settings.production:
            fail(
                f"no Cedar policies at {settings.policies_dir}: production reads them from version control; "
                "set GOVERN_POLICIES to your policies directory (the state dir copy is for the embedded default)"
            )
        shutil.copytree(BUNDLED_POLICIES, settings.home / "policies")
        copied = True
    if settings.production and settings.dagster_database_url is None:
        fail(
            "GOVERN_DATABASE_URL is set (production) but GOVERN_DAGSTER_DATABASE_URL is not: dagster.yaml would send "
            "Dagster's runs, schedules and sensors to SQLite in the state dir, for every process that shares it; "
            "set it (docs/operations.md, Upgrades). Nothing was written"
        )
    bundle = PolicyBundle.load(settings.policies_dir)
    from governance.state import prepare  # brings DVC and pandas: only for the command that needs them

    prepare(settings)
    settings.record_config(replace=True)
    roster = Roster.load(settings.roster_path)
    emit(
        {
            "home": str(settings.home),
            "config": str(settings.config_path),
            "models": sorted(config.models),
            "policies": str(bundle.directory),
            "policies_copied": copied,
            "roster": str(roster.path),
            "principals": sorted(roster.principals),
        },
        as_json,
        _init_human,
    )


def _init_human(result: dict) -> str:
    where = "copied from the bundled policies" if result["policies_copied"] else "in force"
    lines = [
        f"state dir ready: {result['home']}",
        f"config: {result['config']} ({', '.join(result['models'])})",
        f"policies: {result['policies']} ({where})",
        f"roster: {result['roster']} ({len(result['principals'])} principals)",
    ]
    if not result["principals"]:
        lines += [
            "next: each person runs `govern keygen --principal NAME --role ROLE` on their own machine, then",
            "      `govern roster add NAME --role ROLE --public-key FILE` adds them here",
        ]
    return "\n".join(lines)


@roster_app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the principal's roster name, e.g. ravi")],
    role: Annotated[list[str], typer.Option("--role", help="a role (repeat for several)")],
    public_key: Annotated[
        Path,
        typer.Option(
            "--public-key", help="file with the 'ed25519:...' line `govern keygen` prints, or a PEM public key"
        ),
    ],
    display_name: Annotated[str | None, typer.Option("--display-name")] = None,
    as_json: JsonOption = False,
) -> None:
    """Add a principal to the roster in force, as its next version."""
    settings: Settings = ctx.obj
    path = settings.roster_path
    roster = Roster.load(path)
    if not PRINCIPAL_NAME.match(name):
        fail(f"NAME {name!r}: use 2-32 characters of a-z, 0-9, '_' or '-', starting with a letter")
    if name in roster.principals:
        fail(f"{path}: principal {name!r} is already in roster version {roster.version}")
    try:
        roles = parse_roles(role, lambda _field, why: RosterError(why))
    except RosterError as exc:
        fail(f"--role: {exc}")
    principal = Principal(name, roles, _read_public_key(public_key), display_name)
    updated = Roster.write(
        path, version=roster.version + 1, principals=[*roster.principals.values(), principal], header=_header(path)
    )
    emit(
        {
            "roster": str(path),
            "version": updated.version,
            "principal": name,
            "roles": sorted(roles),
            "public_key": principal.key_line,
            "digest": updated.digest,
        },
        as_json,
        lambda r: f"{r['roster']}: version {r['version']} adds {r['principal']} ({', '.join(r['roles'])})",
    )


def _read_public_key(path: Path) -> Ed25519PublicKey:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"--public-key {path}: cannot be read ({type(exc).__name__})")
    if "PRIVATE KEY" in text:
        fail(f"--public-key {path}: this is a private key; give the public key (never share a private key)")
    try:
        if text.startswith("-----BEGIN PUBLIC KEY-----"):
            key = load_pem_public_key(text.encode())
            if not isinstance(key, Ed25519PublicKey):
                fail(f"--public-key {path}: not an Ed25519 public key")
            return parse_public_key_line(public_key_line(key))
        return parse_public_key_line(text.splitlines()[-1].strip().removeprefix("public_key:").strip())
    except (GovernanceError, ValueError) as exc:
        fail(f"--public-key {path}: {exc}")


def _header(path: Path) -> str:
    """The roster file's leading comment, kept when it is rewritten."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].removeprefix(" "))
    return "\n".join(lines)
