"""The configuration reference in docs/configuration.md, generated from the config's JSON Schema.

`reference_markdown()` walks the pydantic JSON Schema of the whole file, from its
top-level keys down: one table per section (field, type, default, meaning), in the
order the sections nest. docs/configuration.md holds it between two markers and a test
checks it is what this module generates, so the documentation cannot drift from
the code (regenerate with `python -m governance.config_reference --write`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from governance import config
from governance.config import GovernanceConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
BEGIN, END = "<!-- BEGIN GENERATED REFERENCE -->", "<!-- END GENERATED REFERENCE -->"
_BOUNDS = (
    ("minimum", ">= {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "<= {}"),
    ("exclusiveMaximum", "< {}"),
    ("minItems", "at least {} item(s)"),
)
# Fields the loader sets, never written in the file: the file's own path, and a model's name (its key under `models`).
SET_BY_LOADER = {("GovernanceConfig", "path"), ("GovernedModel", "name")}
# What a mapping's key stands for in the path of the section its values lead to.
_MAP_KEYS = {"models": "<name>", "columns": "<column>"}


def reference_markdown() -> str:
    sections: list[str] = []
    schema = GovernanceConfig.model_json_schema()
    _section(sections, "", schema, schema["$defs"])
    return "\n".join(sections)


def _section(out: list[str], path: str, schema: dict, defs: dict) -> None:
    required = set(schema.get("required", ()))
    rows, nested = [], []
    for name, prop in schema.get("properties", {}).items():
        if (schema.get("title"), name) in SET_BY_LOADER:
            continue
        default = "required" if name in required else _default(prop, schema.get("title"), name)
        meaning = " ".join(filter(None, [prop.get("description", ""), _bounds(prop)])).replace("|", "\\|")
        rows.append(f"| `{name}` | {_type(prop, defs)} | {default} | {meaning} |")
        for suffix, ref in _refs(prop, name):
            nested.append((f"{path}.{name}{suffix}" if path else f"{name}{suffix}", defs[ref]))
    title = schema.get("description", "").strip().split("\n\n")[0].replace("\n", " ")
    out += [
        f"### `{path}`" if path else "### The top level",
        "",
        *([title, ""] if title else []),
        "| field | type | default | meaning |",
        "|---|---|---|---|",
        *rows,
        "",
    ]
    for sub_path, sub_schema in nested:
        _section(out, sub_path, sub_schema, defs)


def _refs(prop: dict, name: str) -> list[tuple[str, str]]:
    """The sections property `name` leads to, with how the path continues (`[]` a list item, `.<key>` a map
    value, named by _MAP_KEYS)."""
    if "$ref" in prop:
        return [("", prop["$ref"].rsplit("/", 1)[1])]
    found = []
    for option in prop.get("anyOf", ()):
        found += _refs(option, name)
    if "items" in prop:
        found += [("[]" + suffix, ref) for suffix, ref in _refs(prop["items"], name)]
    if isinstance(prop.get("additionalProperties"), dict):
        key = _MAP_KEYS.get(name, "<key>")
        found += [(f".{key}{suffix}", ref) for suffix, ref in _refs(prop["additionalProperties"], name)]
    return found


def _type(prop: dict, defs: dict) -> str:
    if "$ref" in prop:
        return "mapping (below)"
    if "anyOf" in prop:
        return " or ".join(_type(option, defs) for option in prop["anyOf"])
    if "enum" in prop:
        return " \\| ".join(f"`{value}`" for value in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}), defs)}"
    if kind == "object":
        values = prop.get("additionalProperties")
        return f"mapping of {_type(values, defs)}" if isinstance(values, dict) else "mapping"
    return {"string": "text", "integer": "integer", "number": "number", "boolean": "true/false", "null": "null"}.get(
        kind, kind
    )


def _default(prop: dict, section: str | None, name: str) -> str:
    """The schema's default; one made by a factory (which the schema leaves out) is read from the field."""
    if "default" in prop:
        return f"`{json.dumps(prop['default'])}`"
    value = getattr(config, section or "GovernanceConfig").model_fields[name].get_default(call_default_factory=True)
    return "see below" if isinstance(value, BaseModel) else f"`{json.dumps(value)}`"


def _bounds(prop: dict) -> str:
    found = [text.format(prop[key]) for key, text in _BOUNDS if key in prop]
    return f"({', '.join(found)})" if found else ""


def documented(doc: str) -> str:
    """The generated part of a configuration document (between the markers)."""
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    return doc[start:end].strip("\n")


def main() -> None:
    text = DOC.read_text(encoding="utf-8")
    if "--write" in sys.argv[1:]:
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        DOC.write_text(text[:start] + "\n" + reference_markdown() + "\n" + text[end:], encoding="utf-8")
    elif documented(text) != reference_markdown().strip("\n"):
        sys.exit(
            f"{DOC}: the reference differs from the config's schema; run "
            "`python -m governance.config_reference --write`"
        )


if __name__ == "__main__":
    main()
