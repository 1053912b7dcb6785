"""Reviewed snapshots of what the code location defines; `python -m tests.snapshots update` rewrites them."""
