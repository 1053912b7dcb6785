"""The project's error types. Every message names the file, field or record at fault."""


class GovernanceError(Exception):
    """Base class: a governance rule refused something, or input was invalid."""


def brief(exc: Exception) -> str:
    """The problem in one line (SQLAlchemy's messages carry the SQL and a link)."""
    cause = getattr(exc, "orig", None) or exc
    return f"{type(cause).__name__}: {str(cause).strip().splitlines()[0] if str(cause).strip() else ''}"
