"""The scoring API (`govern serve`): decisions from each governed model's approved champion."""

from governance.serving.app import create_app

__all__ = ["create_app"]
