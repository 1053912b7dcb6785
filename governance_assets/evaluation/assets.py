"""Per version: performance, fairness and explainability reports, and the model card."""

import re
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from governance import events, training
from governance.cards import plots
from governance.cards.card import write_card
from governance.config import GovernedModel
from governance.console.links import card_url, console_base
from governance.data.source import read_dataset
from governance.data.validation import load_validation
from governance.digests import digest_of, file_sha256
from governance.errors import GovernanceError
from governance.metrics.explainability import explainability_report, version_explainer
from governance.metrics.fairness import fairness_report, protected_groups
from governance.metrics.performance import performance_report
from governance.monitoring.watch import card_watch
from governance.policy.authz import VersionSubject
from governance.policy.waivers import honoured_waivers
from governance.release.requests import requesters
from governance.settings import Settings
from governance_assets.common import actor, asset_code_version, figure, group, key, md_table, owners, tags, versions
from resources import GovernanceResource, LedgerResource, RegistryResource
from resources.reports import stored_as


def evaluation_assets(model: GovernedModel) -> list[dg.AssetsDefinition]:
    common = dict(
        code_version=asset_code_version(),
        group_name=group(model, "evaluation"),
        owners=owners(model),
        partitions_def=versions(model),
        tags=tags(model, "evaluation"),
    )
    trained_in = {"trained": dg.AssetIn(key(model, "trained_model"))}

    @dg.asset(
        key=key(model, "performance_report"),
        ins=trained_in,
        kinds={"scikit-learn"},
        **common,
        **stored_as("performance.json"),
        description="AUC, Gini, KS, Brier and calibration on the held-out test set, overall and by group.",
    )
    def performance(
        governance: GovernanceResource, registry: RegistryResource, ledger: LedgerResource, trained: dict
    ) -> dg.Output[dict]:
        test, scores = _test_set(governance.settings, model, trained)
        report = performance_report(
            training.unfavourable(model, test), scores, protected_groups(model, test), model.decisioning
        )
        links = _publish(ledger, model, trained, "performance", report)
        registry.store.log_evaluation(
            trained["run_id"],
            {f"performance/{name}": report[name] for name in ("auc", "gini", "ks", "brier")}
            | {"performance/calibration_error": report["calibration"]["expected_calibration_error"]},
        )
        rows = [
            [name, g, v["rows"], v["auc"], v["ks"]]
            for name, groups in report["by_group"].items()
            for g, v in groups.items()
        ]
        return _report(
            report,
            {
                **{name: figure(report[name]) for name in ("auc", "gini", "ks", "brier")},
                "calibration_error": figure(report["calibration"]["expected_calibration_error"]),
                "by_group": md_table(["attribute", "group", "rows", "AUC", "KS"], rows),
                **links,
            },
        )

    @dg.asset(
        key=key(model, "fairness_report"),
        ins=trained_in,
        kinds={"fairlearn"},
        **common,
        **stored_as("fairness.json"),
        description="Fairlearn MetricFrame by protected group and intersection: selection rate, parity, "
        "equalized odds, disparate impact, with bootstrap confidence intervals.",
    )
    def fairness(
        governance: GovernanceResource, registry: RegistryResource, ledger: LedgerResource, trained: dict
    ) -> dg.Output[dict]:
        test, scores = _test_set(governance.settings, model, trained)
        report = fairness_report(
            model,
            1 - training.unfavourable(model, test),
            scores < model.decisioning.approve_below,
            protected_groups(model, test),
        )
        links = _publish(ledger, model, trained, "fairness", report)
        rows = [
            [
                name,
                g,
                v["rows"],
                v["selection_rate"],
                v.get("disparate_impact"),
                _interval(v.get("disparate_impact_ci")),
            ]
            for name in report["gated_attributes"]
            for g, v in report["attributes"][name]["groups"].items()
        ]
        odds = {
            f"equalized_odds_difference[{n}]": figure(report["attributes"][n]["equalized_odds_difference"], 3)
            for n in report["gated_attributes"]
        }
        impacts = {
            f"fairness/min_disparate_impact/{n}": min(
                (
                    g["disparate_impact"]
                    for g in report["attributes"][n]["groups"].values()
                    if g.get("disparate_impact") is not None
                ),
                default=None,
            )
            for n in report["gated_attributes"]
        }
        registry.store.log_evaluation(
            trained["run_id"],
            impacts
            | {
                f"fairness/equalized_odds_difference/{n}": report["attributes"][n]["equalized_odds_difference"]
                for n in report["gated_attributes"]
            },
        )
        return _report(
            report,
            {
                **odds,
                "groups": md_table(["attribute", "group", "rows", "approval rate", "DI", "DI interval"], rows),
                **links,
            },
        )

    @dg.asset(
        key=key(model, "explainability_report"),
        ins=trained_in,
        kinds={"shap"},
        **common,
        **stored_as("explainability.json"),
        description="SHAP global importance on a bounded sample, the proxy screen of every feature, and how many "
        "reasons the screen withholds on the sample's declined or referred applications.",
    )
    def explainability(
        governance: GovernanceResource, registry: RegistryResource, ledger: LedgerResource, trained: dict
    ) -> dg.Output[dict]:
        settings = governance.settings
        registered = registry.store.version(model.name, trained["version"])
        pipeline = registry.store.load(registered, trained["artifact_sha256"])
        test, _ = _test_set(settings, model, trained)
        explainer = version_explainer(settings, model, pipeline, trained["data_md5"])
        report, values = explainability_report(model, explainer, test, protected_groups(model, test))
        plots.shap_summary(
            values, test.loc[values.index], _dir(settings, model, trained) / "plots" / "shap_summary.svg"
        )
        links = _publish(ledger, model, trained, "explainability", report)
        rows = [
            [r["rank"], r["feature"], r["mean_abs_shap"], max(report["proxy_strength"][r["feature"]].values())]
            for r in report["importance"][:10]
        ]
        flags = [[f["feature"], f["attribute"], f["strength"], f["weighted"], f["why"]] for f in report["proxy_flags"]]
        return _report(
            report,
            {
                "top_features": md_table(["rank", "feature", "mean |SHAP|", "proxy strength"], rows),
                "proxy_flags": len(report["proxy_flags"]),
                "flagged_proxies": md_table(["feature", "attribute", "strength", "weighted", "why"], flags),
                **links,
            },
        )

    @dg.asset(
        key=key(model, "model_card"),
        kinds={"markdown", "html"},
        **common,
        **stored_as("model_card.json"),
        ins={
            "trained": dg.AssetIn(key(model, "trained_model")),
            "performance": dg.AssetIn(key(model, "performance_report")),
            "fairness": dg.AssetIn(key(model, "fairness_report")),
            "explainability": dg.AssetIn(key(model, "explainability_report")),
        },
        description="The model card (Markdown and self-contained HTML with plots) from the version's reports.",
    )
    def model_card(
        context: dg.AssetExecutionContext,
        governance: GovernanceResource,
        ledger: LedgerResource,
        trained: dict,
        performance: dict,
        fairness: dict,
        explainability: dict,
    ) -> dg.Output[dict]:
        services = governance.services
        asked = requesters(services, model.name, trained["key"])
        subject = VersionSubject(
            model.name,
            trained["key"],
            model.risk_tier,
            tuple(trained["trained_by"]),
            asked.verified,
            named_requesters=asked.named,
        )
        waivers = [
            w.to_dict()
            for w in honoured_waivers(
                bundle=services.policies, roster=services.roster, store=services.statements, subject=subject
            )
        ]
        return publish_card(governance, ledger, model, trained, performance, fairness, explainability, waivers)

    return [performance, fairness, explainability, model_card]


def publish_card(
    governance: GovernanceResource,
    ledger: LedgerResource,
    model: GovernedModel,
    trained: dict,
    performance: dict,
    fairness: dict,
    explainability: dict,
    waivers: list[dict],
) -> dg.Output[dict]:
    """Render the version's card from its reports (as stored and verified by the reports IO manager) with
    `waivers` listed, ledger its digests, and return the model_card output (the release gate publishes it again
    when the waivers it honoured differ)."""
    settings, services = governance.settings, governance.services
    reports = {"performance": performance, "fairness": fairness, "explainability": explainability}
    validation = load_validation(settings, model.name, trained["data_md5"])
    reports["validation"], reports["snapshot"] = validation, validation["snapshot"]
    out = _dir(settings, model, trained)
    plots.roc(reports["performance"], out / "plots" / "roc.svg")
    plots.calibration(reports["performance"], out / "plots" / "calibration.svg")
    plots.selection_rates(reports["fairness"], out / "plots" / "selection_rates.svg")
    digests = {  # each report's canonical JSON: the bytes its file holds and its ledger entry names
        "Performance report": digest_of(performance),
        "Fairness report": digest_of(fairness),
        "Explainability report": digest_of(explainability),
    }
    watch = card_watch(services.policies, model, trained["key"], explainability, performance)
    card = write_card(
        model,
        trained["key"],
        services.registry.version(model.name, trained["version"]),
        reports,
        digests,
        waivers=waivers,
        out_dir=out,
        monitoring=watch,
        requested_by=requesters(services, model.name, trained["key"]).describe(),
    )
    links = ledger.record(
        events.CardPublished(
            actor=actor("model_card"),
            model=model.name,
            version=trained["key"],
            html=card.html_sha256,
            markdown=card.markdown_sha256,
            complete=card.complete,
            missing_sections=tuple(card.missing_sections),
            waivers=tuple(w["statement_digest"] for w in waivers),
        ),
    )
    page = card_url(model.name, trained["key"], console_base(settings))  # the card, plots included, in the console
    result = {
        "key": trained["key"],
        "markdown_path": str(card.markdown),
        "html_path": str(card.html),
        "markdown_sha256": card.markdown_sha256,
        "html_sha256": card.html_sha256,
        "complete": card.complete,
        "missing_sections": card.missing_sections,
        "waivers": sorted(w["statement_digest"] for w in waivers),
    }
    return dg.Output(
        result,
        data_version=dg.DataVersion(card.html_sha256),
        metadata={
            "card": dg.MetadataValue.md(_without_images(card.markdown.read_text(encoding="utf-8"), page)),
            "html": dg.MetadataValue.url(page),
            "html_sha256": card.html_sha256,
            "complete": card.complete,
            "missing_sections": ", ".join(card.missing_sections) or "none",
            "waivers": len(waivers),
            **links,
        },
    )


def _dir(settings: Settings, model: GovernedModel, trained: dict) -> Path:
    path = settings.model_dir(model.name, trained["key"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def _test_set(settings: Settings, model: GovernedModel, trained: dict) -> tuple[pd.DataFrame, np.ndarray]:
    """The version's test rows and the scores trained_model recorded for them (both digest-checked)."""
    for name in ("scores", "test"):
        if file_sha256(trained[f"{name}_path"]) != trained[f"{name}_sha256"]:
            raise GovernanceError(f"{trained[f'{name}_path']}: changed since trained_model recorded it")
    test = read_dataset(model, trained["test_path"])
    scores = np.load(trained["scores_path"])
    if len(scores) != len(test):
        raise GovernanceError(f"{trained['key']}: {len(scores)} recorded scores for {len(test)} test rows")
    return test.reset_index(drop=True), scores


def _report(report: dict, metadata: dict) -> dg.Output[dict]:
    """A report's output; its data version is the digest its ledger entry names (and its stored file hashes to)."""
    return dg.Output(report, data_version=dg.DataVersion(digest_of(report)), metadata=metadata)


def _publish(ledger: LedgerResource, model: GovernedModel, trained: dict, name: str, report: dict) -> dict:
    """Ledger a report's digest (of its canonical JSON: the bytes the reports IO manager stores); returns the
    metadata linking the materialization to the ledger."""
    return ledger.record(
        events.REPORT_EVENTS[name](
            actor=actor(f"{name}_report"),
            model=model.name,
            version=trained["key"],
            report=digest_of(report),
            artifact=trained["artifact_sha256"],
        ),
    )


def _without_images(markdown: str, html_url: str) -> str:
    """The UI cannot resolve the card's relative plot files: link the HTML card, which carries them, instead."""
    plots = f"_(plots: see the [HTML card]({html_url}))_"
    return re.sub(r"!\[[^\]]*\]\([^)]*\)( !\[[^\]]*\]\([^)]*\))*", lambda _: plots, markdown)


def _interval(bounds) -> str:
    if not bounds or bounds[0] is None:
        return ""
    return f"[{float(bounds[0]):.3f}, {float(bounds[1]):.3f}]"
