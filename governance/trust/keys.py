"""Ed25519 key pairs of principals: generate, store owner-only, load, and show.

A private key file is PEM (PKCS #8, unencrypted), mode 0600, never overwritten
and never written inside a git work tree, so that it cannot end up in a repository.
Public keys travel as one line, `ed25519:<base64 of the raw 32 bytes>`, which is
what the roster holds. Nothing here prints, logs or returns private key bytes.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from governance.errors import GovernanceError
from governance.trust.curve import is_prime_order_point

KEY_PREFIX = "ed25519:"
USER_KEYS_DIR = Path("~/.config/govern/keys")
_MAX_KEY_FILE_BYTES = 4096


class KeyFileError(GovernanceError):
    """A private key file cannot be written or read safely. The message names the file."""


class PublicKeyError(GovernanceError):
    """A public key line is malformed or not a sound Ed25519 key."""


def generate_key_pair() -> tuple[Ed25519PrivateKey, Ed25519PublicKey]:
    private = Ed25519PrivateKey.generate()
    return private, private.public_key()


def public_key_line(public: Ed25519PublicKey) -> str:
    """The roster form of a public key: `ed25519:<base64 raw 32 bytes>`."""
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return KEY_PREFIX + base64.b64encode(raw).decode("ascii")


def parse_public_key_line(line: object) -> Ed25519PublicKey:
    """Decode `ed25519:<base64>`; refuse anything but a key of prime order (see curve.py)."""
    if not isinstance(line, str) or not line.startswith(KEY_PREFIX):
        # Never quote the value: someone may have pasted a private key here by mistake.
        raise PublicKeyError("expected a string 'ed25519:<base64 of 32 bytes>'")
    try:
        raw = base64.b64decode(line[len(KEY_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise PublicKeyError("the part after 'ed25519:' is not valid base64") from None
    if len(raw) != 32:
        raise PublicKeyError(f"an Ed25519 public key is 32 bytes, this one decodes to {len(raw)}")
    if not is_prime_order_point(raw):
        raise PublicKeyError("32 bytes that are not a usable Ed25519 public key (not a curve point of prime order)")
    return Ed25519PublicKey.from_public_bytes(raw)


def user_key_path(principal: str) -> Path:
    """Where `govern keygen` puts a real principal's key by default: outside any repository."""
    return (USER_KEYS_DIR / f"{principal}.key").expanduser()


def write_private_key(path: str | Path, key: Ed25519PrivateKey, *, allow_git_ignored: bool = False) -> Path:
    """Write `key` to a new file that is mode 0600 from its first byte; return the path.

    Refuses to overwrite, and refuses a path inside a git work tree unless
    `allow_git_ignored` is set and git ignores that path (the demo's state dir).
    The file appears complete or not at all: written to a private temporary file,
    flushed, then hard-linked to its name (which fails if the name exists).
    """
    path = Path(path).expanduser().absolute()
    _refuse_git_work_tree(path, allow_git_ignored)
    exists = KeyFileError(f"{path}: already exists; refusing to overwrite a key file (move it away first)")
    if path.exists():
        raise exists
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise KeyFileError(f"{path.parent}: cannot create the key directory ({exc.strerror})") from None
    try:
        _write_new_file(path, pem)
    except FileExistsError:
        raise exists from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot write the key file ({exc.strerror})") from None
    return path


def _write_new_file(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(temporary, path)  # fails if the name exists, even as a dangling symlink
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Load a key written by `write_private_key`; refuse files others could read."""
    path = Path(path).expanduser()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise KeyFileError(f"{path}: private key file not found") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot open private key file ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise KeyFileError(f"{path}: not a regular file")
        if mode & 0o077:
            raise KeyFileError(
                f"{path}: private key file is accessible to group or others (mode {stat.S_IMODE(mode):04o}); "
                f"run 'chmod 600 {path}' after checking nobody else has copied it"
            )
        pem = fh.read(_MAX_KEY_FILE_BYTES + 1)
    if len(pem) > _MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{path}: too large to be an Ed25519 private key file")
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        # The library's message could quote the file; ours never does.
        raise KeyFileError(f"{path}: not an unencrypted PEM (PKCS #8) private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: holds a {type(key).__name__}, expected an Ed25519 private key")
    return key


def _refuse_git_work_tree(path: Path, allow_git_ignored: bool) -> None:
    top = _git_work_tree(path.parent)
    if top is None:
        return
    if allow_git_ignored and _git_ignores(top, path):
        return
    where = "inside the git work tree" if not allow_git_ignored else "inside the git work tree, and not git-ignored, of"
    raise KeyFileError(
        f"{path}: {where} {top}; private keys must never be written where they could be "
        f"committed (use a path outside any repository, e.g. {user_key_path('NAME')})"
    )


def _git_work_tree(directory: Path) -> Path | None:
    existing = directory
    while not existing.exists():
        existing = existing.parent
    try:
        done = subprocess.run(
            ["git", "-C", str(existing), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:  # no git installed: look for a repository the plain way
        return next((p for p in (existing, *existing.parents) if (p / ".git").exists()), None)
    return Path(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else None


def _git_ignores(top: Path, path: Path) -> bool:
    try:
        done = subprocess.run(
            ["git", "-C", str(top), "check-ignore", "-q", str(path)], capture_output=True, check=False
        )
    except FileNotFoundError:
        return False
    return done.returncode == 0


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def signing_key_path(keys_dir: Path, principal: str) -> Path:
    """The key file a command signs with for `--as PRINCIPAL` when no `--key` is given.

    The state directory's key (the demo's cast) comes first, then the user's own
    key directory; the error names both places when neither has one.
    """
    candidates = (keys_dir / f"{principal}.key", user_key_path(principal))
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise KeyFileError(
        f"no private key for principal {principal!r}: looked for {candidates[0]} and {candidates[1]} "
        f"(create one with 'govern keygen --principal {principal}', or pass --key FILE)"
    )
