"""The project's error types. Every message names the file, field or record at fault."""


class GovernanceError(Exception):
    """Base class: a governance rule refused something, or input was invalid."""
