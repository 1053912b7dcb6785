"""The README's bring-your-own-model walkthrough, read from the README itself: its config, its commands and its
application, so that tests run what a reader follows rather than a copy of it."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "A walkthrough from your own CSV", "**From the UI or the `dagster` CLI instead"


def walkthrough() -> str:
    """The walkthrough's text: from its introduction to the alternatives that follow it."""
    text = README.read_text(encoding="utf-8")
    return text[text.index(START) : text.index(END)]


def blocks(language: str) -> list[str]:
    """The walkthrough's fenced blocks of `language`, in order, without the list items' indentation."""
    found = re.findall(r"^( *)```(\w*)\n(.*?)^\1```$", walkthrough(), re.S | re.M)
    return [textwrap.dedent(body) for _indent, lang, body in found if lang == language]


def config() -> str:
    """The config of step 1, as the reader saves it to `governance.yaml`."""
    (yaml_block,) = blocks("yaml")
    return yaml_block


def application() -> str:
    """The `application.json` of the serve step."""
    (json_block,) = blocks("json")
    return json_block


def commands() -> list[str]:
    """Every command of the walkthrough's shell blocks in the order given, continuation lines joined."""
    joined = "\n".join(blocks("bash")).replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip()]
