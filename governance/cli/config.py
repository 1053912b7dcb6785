"""`govern config check FILE`: validate a governed models config before anything runs.

Every problem of every model is printed on its own `error:` line naming the file, the model, the field
and the fix (a mistyped key with the allowed keys and the closest match, a data file that is missing or
unreadable); the exit status is 1 when there is any. A valid model without what the release gate requires
of its card (intended_use, limitations, owners), or with features that have no adverse-action reason text,
gets a `warning:` line naming them; warnings leave the exit status 0. Nothing is trained, registered or written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from governance.cli.output import emit
from governance.config import ConfigError, GovernedModel, data_file_problems, load_config

app = typer.Typer(no_args_is_help=True, help="The governed models config: check it before anything runs.")


@app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="the config file (e.g. governance.yaml)")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Validate FILE as `govern` and the UI will load it; print each model, or every error."""
    try:
        config = load_config(file)
        missing = data_file_problems(config)
        if missing:
            raise ConfigError("\n".join(missing), missing)
    except ConfigError as exc:
        if as_json:
            emit({"file": str(file), "valid": False, "errors": exc.problems}, True, str)
        else:
            for problem in exc.problems:
                typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1) from None
    models = [
        {
            "model": name,
            "risk_tier": model.risk_tier,
            "features": model.feature_columns,
            "protected_attributes": [a.label for a in model.protected_attributes],
            "warnings": _warnings(file, name, model),
        }
        for name, model in config.models.items()
    ]
    if not as_json:
        for model in models:
            for warning in model["warnings"]:
                typer.echo(f"warning: {warning}", err=True)
    emit({"file": str(file), "valid": True, "models": models}, as_json, _human)


def _warnings(file: Path, name: str, model: GovernedModel) -> list[str]:
    where, warnings = f"{file}: model '{name}'", []
    if model.undocumented:
        warnings.append(
            f"{where}: no {', '.join(model.undocumented)}: its model card will lack them, so the release gate "
            "(documentation.model_card_complete) will deny every version; add them to the model"
        )
    if untexted := model.reasons_without_text:
        example = untexted[0]
        warnings.append(
            f"{where}: no reason_codes text for {', '.join(untexted)}: a decline would state a text made from the "
            f"column name ({example} -> {model.reason_text(example)!r}), not a reason an applicant can read; add "
            "reason_codes.<feature> for each"
        )
    return warnings


def _human(result: dict) -> str:
    lines = [f"{result['file']}: valid"]
    for model in result["models"]:
        lines.append(
            f"  {model['model']} ({model['risk_tier']} risk): {len(model['features'])} features; protected: "
            f"{', '.join(model['protected_attributes'])}"
        )
    return "\n".join(lines)
