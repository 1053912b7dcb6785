"""Reading the YAML files people edit (governed-models config, roster, control map).

Strict UTF-8, and a key written twice in one mapping is an error: YAML loaders keep
the last of two equal keys silently, so a second `ravi:` or `credit_scoring:` would
quietly replace the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from governance.errors import GovernanceError


def read_yaml(
    path: Path, error: type[GovernanceError], what: str, item_names: Mapping[tuple[str, ...], str] | None = None
) -> Any:
    """Parse `path`, raising `error` with a message naming the file (`what` says which kind of file).

    `item_names` names the entries of a mapping for messages: {("principals",): "principal"} makes a
    duplicate under `principals` read "principal 'ravi'" rather than "field 'principals.ravi'"."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        _refuse_duplicate_keys(path, yaml.compose(text, Loader=yaml.SafeLoader), (), error, item_names or {})
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None


def _refuse_duplicate_keys(
    path: Path,
    node: yaml.Node | None,
    trail: tuple[str, ...],
    error: type[GovernanceError],
    item_names: Mapping[tuple[str, ...], str],
) -> None:
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(path, item, trail, error, item_names)
    if not isinstance(node, yaml.MappingNode):
        return
    first_line: dict[str, int] = {}
    for key_node, value_node in node.value:
        key, line = str(key_node.value), key_node.start_mark.line + 1
        if key in first_line:
            where = f"{item_names[trail]} {key!r}" if trail in item_names else f"field {'.'.join((*trail, key))!r}"
            raise error(f"{path}: {where}: defined twice (lines {first_line[key]} and {line}); names must be unique")
        first_line[key] = line
        _refuse_duplicate_keys(path, value_node, (*trail, key), error, item_names)
