"""The model card: Markdown for review in the Dagster UI, self-contained HTML for people and examiners.

The card is rendered from the version's reports, never from live objects, so
it says exactly what the sealed evidence says. `missing_sections` names what a
reviewer would find absent; the documentation gate reads it.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jinja2
from markdown_it import MarkdownIt

from governance.config import GovernedModel
from governance.digests import file_sha256
from governance.registry import RegisteredVersion

CARD_HTML = "model_card.html"  # in the version's model dir, as published (the evidence pack seals it by this name)
_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("governance.cards", "templates"),
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)
_HTML_STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d232a}
table{border-collapse:collapse;margin:.8rem 0}td,th{border:1px solid #ccd;padding:.25rem .6rem;text-align:left}
th{background:#eef}code{background:#f3f3f6;padding:0 .2rem}img{max-width:100%;vertical-align:top}"""


@dataclass(frozen=True)
class Card:
    markdown: Path
    html: Path
    markdown_sha256: str
    html_sha256: str
    missing_sections: list[str]

    @property
    def complete(self) -> bool:
        return not self.missing_sections


def missing_sections(model: GovernedModel, reports: dict) -> list[str]:
    """Sections a complete card needs and this one lacks."""
    checks = {
        "data_validation": bool(reports["validation"].get("passed")),
        "performance": reports["performance"].get("auc") is not None,
        "fairness": all(a in reports["fairness"]["attributes"] for a in reports["fairness"]["gated_attributes"]),
        "explanations": bool(reports["explainability"].get("importance")),
    }
    return [*model.undocumented, *(name for name, present in checks.items() if not present)]


def write_card(
    model: GovernedModel,
    key: str,
    registered: RegisteredVersion,
    reports: dict,
    report_digests: dict[str, str],
    waivers: list[dict],
    out_dir: Path,
    monitoring: dict,
    requested_by: str,
) -> Card:
    """Render `model_card.md` and `model_card.html` into `out_dir` (plots are expected in out_dir/plots);
    `monitoring` is what the monitoring policy would do about it (`governance.monitoring.watch.card_watch`);
    `requested_by` who verifiably asked for the version, or that nobody is known to have."""
    missing = missing_sections(model, reports)
    limitations = list(model.limitations) + _automatic_limitations(reports)
    markdown = _TEMPLATES.get_template("model_card.md.j2").render(
        model=model,
        key=key,
        registered=registered,
        report_digests=report_digests,
        waivers=waivers,
        limitations=limitations,
        monitoring=monitoring,
        requested_by=requested_by,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        ci=_ci,
        num=_num,
        proxy_line=_proxy_line,
        **reports,
    )
    if missing:
        markdown += "\n## Incomplete\n\nThis card lacks: " + ", ".join(missing) + ".\n"
    md_path, html_path = out_dir / "model_card.md", out_dir / CARD_HTML
    md_path.write_text(markdown, encoding="utf-8")
    html_path.write_text(_html(markdown, out_dir, title=f"Model card: {model.name} {key}"), encoding="utf-8")
    return Card(md_path, html_path, file_sha256(md_path), file_sha256(html_path), missing)


def _automatic_limitations(reports: dict) -> list[str]:
    found = []
    for name in reports["fairness"]["gated_attributes"]:
        small = [g for g, v in reports["fairness"]["attributes"][name]["groups"].items() if v["small_group"]]
        if small:
            found.append(f"Few test rows for {name} group(s) {', '.join(small)}: their figures have wide intervals.")
    for flag in reports["explainability"]["proxy_flags"]:
        found.append(
            f"`{flag['feature']}` (importance rank {flag['rank']}) is a proxy for {flag['attribute']} "
            f"(strength {flag['strength']:.2f}, weighted {flag['weighted']:.2f}); never given as a reason."
        )
    return found


def _html(markdown: str, out_dir: Path, title: str) -> str:
    body = MarkdownIt("commonmark").enable("table").render(markdown)
    body = re.sub(r'src="(plots/[^"]+\.svg)"', lambda m: f'src="{_data_uri(out_dir / m.group(1))}"', body)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_HTML_STYLE}</style></head><body>{body}</body></html>"
    )


def _data_uri(path: Path) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(path.read_bytes()).decode()


def _ci(bounds: list) -> str:
    low, high = bounds
    return "" if low is None else f"[{float(low):.3f}, {float(high):.3f}]"


def _num(value) -> str:
    """A figure to three decimals; reports write an infinite ratio as "inf"."""
    return "n/a" if value is None else f"{float(value):.3f}"


def _proxy_line(strengths: dict[str, float]) -> str:
    attribute, strength = max(strengths.items(), key=lambda kv: kv[1])
    return f"{strength:.2f} ({attribute})"
