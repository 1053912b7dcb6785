"""The model card's plots, drawn from the reports (PNG files)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import pandas as pd  # noqa: E402


def roc(performance: dict, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(4.2, 4))
    curve = performance["roc_curve"]
    ax.plot(curve["fpr"], curve["tpr"], label=f"AUC {performance['auc']:.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC (test set)")
    ax.legend(loc="lower right")
    return _save(fig, path)


def calibration(performance: dict, path: Path) -> Path:
    bins = performance["calibration"]["bins"]
    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.plot([b["mean_score"] for b in bins], [b["observed_rate"] for b in bins], marker="o")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.set(xlabel="Mean score", ylabel="Observed rate", title="Calibration (deciles)")
    return _save(fig, path)


def selection_rates(fairness: dict, path: Path) -> Path:
    gated = fairness["gated_attributes"]
    fig, axes = plt.subplots(1, len(gated), figsize=(4.2 * len(gated), 3.6), squeeze=False)
    for ax, name in zip(axes[0], gated):
        groups = fairness["attributes"][name]["groups"]
        labels = list(groups)
        rates = [groups[g]["selection_rate"] for g in labels]
        errors = [[r - (groups[g]["selection_rate_ci"][0] or r) for g, r in zip(labels, rates)],
                  [(groups[g]["selection_rate_ci"][1] or r) - r for g, r in zip(labels, rates)]]
        ax.bar(labels, rates, yerr=errors, capsize=4, color="#4C72B0")
        ax.set(title=f"Approval rate by {name}", ylim=(0, 1))
    return _save(fig, path)


def shap_summary(values: pd.DataFrame, sample: pd.DataFrame, path: Path) -> Path:
    import shap

    shown = sample[values.columns].copy()
    for column in shown.columns:
        if not pd.api.types.is_numeric_dtype(shown[column]):
            shown[column] = shown[column].astype("category").cat.codes
    shap.summary_plot(values.to_numpy(), shown, show=False, max_display=12, plot_size=(7, 5))
    return _save(plt.gcf(), path)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
