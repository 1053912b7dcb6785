"""Governed models as configuration.

`governance.yaml` (or `GOVERN_CONFIG`, or `--config`) lists every governed model.
Adding an entry adds that model's asset graph; no code changes. The file is
validated on load and every error names the file, the model and the field.
"""

from __future__ import annotations

import csv
import difflib
import math
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from governance.data.contract import CONTRACT, PROTECTED_SOURCES
from governance.errors import GovernanceError
from governance.monitoring.schedule import check_spread, spread_cron
from governance.yamlfile import read_yaml

MODEL_NAME = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
RiskTier = Literal["high", "medium", "low"]
EstimatorKind = Literal["hist_gradient_boosting", "logistic_regression", "random_forest"]
# The error type of a governed model's cross-field checks; its context lists each problem.
MODEL_CHECKS = "model_checks"
# SHAP's categorical split reads its category set from a float32 bit mask: categories 1..24 at most.
MAX_SHAP_CATEGORIES = 24


class ConfigError(GovernanceError):
    """A configuration file is invalid. The message names file, model and field; `problems` lists each one."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GeneratorSource(_Strict):
    """The built-in synthetic credit-applications generator (see governance.data.generator)."""

    rows: int = Field(50_000, ge=100, le=50_000_000, description="applications to generate")
    seed: int = Field(7, description="random seed: the same seed gives the same rows")
    bias: float = Field(0.0, ge=0.0, le=1.0, description="historical bias against the disadvantaged group")
    drift: float = Field(0.0, ge=0.0, le=1.0, description="population shift away from the baseline")
    proxy: float = Field(0.0, ge=0.0, le=1.0, description="strength of a feature that leaks sex")


class FileSource(_Strict):
    """A CSV or Parquet file, resolved relative to the config file."""

    path: Path = Field(description="the data file (.csv or .parquet), relative to the config file or absolute")

    @field_validator("path")
    @classmethod
    def _known_format(cls, value: Path) -> Path:
        if value.suffix.lower() not in {".csv", ".parquet"}:
            raise ValueError(f"unsupported data file type {value.suffix!r} (use .csv or .parquet)")
        return value


class DataSource(_Strict):
    """Where a version's training data comes from: exactly one of `generator` or `file`."""

    generator: GeneratorSource | None = Field(None, description="the built-in synthetic generator")
    file: FileSource | None = Field(None, description="a CSV or Parquet file (needs `columns`, its data contract)")

    @model_validator(mode="after")
    def _exactly_one(self) -> DataSource:
        if (self.generator is None) == (self.file is None):
            raise ValueError("give exactly one of 'generator' or 'file'")
        return self


class ProtectedAttribute(_Strict):
    """A column measured for fairness. Never a model feature.

    Numeric columns are cut into `bands` (left-closed edges) so groups exist.
    `reference` is the group others are compared with (default: the largest).
    """

    column: str = Field(description="the column holding the attribute (in the data, never a feature)")
    name: str | None = Field(None, description="what reports call it (default: the column name)")
    bands: list[float] | None = Field(
        None,
        description="left-closed band edges for a numeric column, e.g. [18, 30, 40, 50, 101] gives groups "
        "'[18.0, 30.0)' ... '[50.0, 101.0)'; required for a numeric column without `values`",
    )
    reference: str | None = Field(
        None,
        description="the group others are compared with: one of the column's values, or of its bands "
        "written as '[18.0, 30.0)' (default: the largest group)",
    )
    derived_from: list[str] = Field(
        default_factory=list,
        description="columns the attribute is computed from (e.g. the raw age behind an age "
        "band): like the attribute, never a feature",
    )

    @property
    def label(self) -> str:
        return self.name or self.column

    @property
    def band_labels(self) -> list[str]:
        """The group names the bands give (as pandas writes a left-closed interval)."""
        edges = self.bands or []
        return [f"[{float(low)!r}, {float(high)!r})" for low, high in zip(edges, edges[1:])]

    @field_validator("bands")
    @classmethod
    def _increasing(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (len(value) < 2 or any(b <= a for a, b in zip(value, value[1:]))):
            raise ValueError("bands must be at least two strictly increasing edges")
        return value


ColumnKind = Literal["integer", "number", "category", "boolean"]


class ColumnSpec(_Strict):
    """The data contract of one column, turned into Great Expectations expectations."""

    kind: ColumnKind = Field(description="integer, number, category or boolean")
    min: float | None = Field(
        None, description="smallest allowed value (numeric columns; required for a numeric feature without values)"
    )
    max: float | None = Field(
        None, description="largest allowed value (numeric columns; required for a numeric feature without values)"
    )
    values: list[int | str] | None = Field(
        None, description="the allowed values (required for a category column; optional for an integer column)"
    )
    nullable: bool = Field(
        False,
        description=(
            "whether a value may be missing (in a CSV: an empty cell; outside a category column also the cells pandas "
            "reads as missing, such as NA or null: in a category column those are values). A request sends a "
            "missing value as null; it may not leave the feature out"
        ),
    )

    @field_validator("values", mode="before")
    @classmethod
    def _not_booleans(cls, values: Any) -> Any:
        if isinstance(values, list) and any(isinstance(v, bool) for v in values):
            raise ValueError(
                f"values {values} were read as booleans: YAML reads unquoted no, yes, on, off, true and false "
                "as booleans; quote them (e.g. ['no', 'yes'])"
            )
        if isinstance(values, list) and any(v is None for v in values):
            raise ValueError(
                f"values {values} hold a null: YAML reads an unquoted null, Null, ~ or an empty item as no value; "
                "quote a value spelled so (e.g. ['null', 'gold']), or leave it out and set nullable: true for "
                "missing values"
            )
        return values

    @model_validator(mode="after")
    def _consistent(self) -> ColumnSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        if self.values is not None and self.kind not in ("integer", "category"):
            raise ValueError("values are only for integer or category columns")
        if self.kind == "category" and not self.values:
            raise ValueError("a category column needs its allowed values")
        return self


class Estimator(_Strict):
    """The scikit-learn estimator trained for each version."""

    kind: EstimatorKind = Field(
        "hist_gradient_boosting", description="hist_gradient_boosting, logistic_regression or random_forest"
    )
    params: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for the estimator")


class Decisioning(_Strict):
    """How a score (probability of the unfavourable outcome) becomes a decision."""

    approve_below: float = Field(0.2, gt=0, lt=1, description="scores below this are approved automatically")
    decline_at_or_above: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="scores from this up are declined, with reasons; in between: referred to manual review",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Decisioning:
        if self.approve_below > self.decline_at_or_above:
            raise ValueError("approve_below must not exceed decline_at_or_above")
        return self


class Evaluation(_Strict):
    """How a version is evaluated: its held-out test set, intervals, explanations and proxy screen."""

    test_fraction: float = Field(
        0.25, gt=0.05, lt=0.9, description="share of rows held out for testing (by a hash of the id column)"
    )
    bootstrap_samples: int = Field(200, ge=20, le=5000, description="bootstrap resamples for confidence intervals")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="confidence level of the intervals")
    shap_sample_rows: int = Field(1000, ge=50, le=100_000, description="test rows SHAP explains for global importance")
    proxy_flag_strength: float = Field(
        0.5,
        gt=0,
        le=1,
        description="flag a feature as a proxy when its strength times its importance share "
        "(mean |SHAP| over the top feature's) reaches this",
    )
    proxy_encoding_strength: float = Field(
        0.95,
        gt=0,
        le=1,
        description="flag a feature as a proxy when its strength alone reaches this, whatever its "
        "importance (it encodes a protected attribute)",
    )
    min_group_size: int = Field(
        30,
        ge=1,
        description="rows of each outcome a group needs for its rates to count in the equalized odds "
        "difference and for bootstrap intervals (a smaller group is judged on exact Clopper-Pearson intervals)",
    )


class Monitoring(_Strict):
    """Production monitoring of the champion's decisions (thresholds live in the policy files)."""

    collect_protected_attributes: bool = Field(
        False, description="log protected attributes sent with requests, for fairness monitoring only"
    )
    window_size: int = Field(500, ge=20, description="decisions per monitoring window")
    min_window_size: int = Field(200, ge=10, description="never judge a smaller window")
    check_interval_seconds: int = Field(30, ge=1, description="how often the sensors look")
    retrain_cron: str = Field("0 3 * * 1", description="scheduled retraining (cron, UTC)")
    retrain_spread_minutes: int = Field(
        120,
        ge=0,
        le=1440,
        description="each model's scheduled retraining fires sha256(name) mod this many minutes after "
        "retrain_cron's time, so models do not all queue at once (0: at retrain_cron exactly)",
    )

    @model_validator(mode="after")
    def _sizes(self) -> Monitoring:
        if self.min_window_size > self.window_size:
            raise ValueError("min_window_size must not exceed window_size")
        check_spread(self.retrain_cron, self.retrain_spread_minutes)
        return self


class Owners(_Strict):
    """Who owns the model (roster principal names)."""

    team: str = Field(description="the owning team")
    data_scientists: list[str] = Field(min_length=1, description="who trains it: they may never approve its versions")
    business_owner: str = Field(
        description="who answers for its decisions: the one business owner who may switch it on and off and "
        "approve its medium- and low-risk versions (the role acts on the models that name them only); after a "
        "change, the new owner signs `govern enable` (the old owner's flips and approvals stop verifying)"
    )


class GovernedModel(_Strict):
    """One governed model: an entry under `models`, keyed by its name (lower snake_case)."""

    name: str = Field(description="set from the entry's key under `models`")
    description: str = Field("", description="what the model predicts, for the model card")
    intended_use: str = Field(
        "",
        description="what it may be used for; the release gate denies a version whose card lacks it "
        "(`govern config check` warns)",
    )
    limitations: list[str] = Field(
        default_factory=list,
        description="known limits, printed on the model card; at least one is needed, else the release gate "
        "denies every version (`govern config check` warns)",
    )
    source: DataSource = Field(description="where the training data comes from")
    columns: dict[str, ColumnSpec] | None = Field(
        None, description="data contract; optional for the generator, which brings its own"
    )
    min_rows: int = Field(1000, ge=10, description="a data snapshot with fewer rows is refused")
    id_column: str = Field(description="unique id of each row (never a feature)")
    target: str = Field(description="the outcome column (two values)")
    favourable_outcome: int | str = Field(
        description="the target value that is good for the applicant (e.g. no default)"
    )
    features: Literal["all"] | list[str] = Field(
        "all",
        description="the model's inputs: `all` (every contract column but the id, target, protected "
        "attributes and their sources, and `exclude`) or a list",
    )
    exclude: list[str] = Field(default_factory=list, description="columns never used as features")
    protected_attributes: list[ProtectedAttribute] = Field(
        min_length=1, description="attributes fairness is measured on; never features, never reasons"
    )
    risk_tier: RiskTier = Field(description="high, medium or low: selects the policy thresholds and waiver limits")
    estimator: Estimator = Field(default_factory=Estimator, description="what is trained")
    decisioning: Decisioning = Field(default_factory=Decisioning, description="score cut-offs")
    evaluation: Evaluation = Field(default_factory=Evaluation, description="test set, intervals, SHAP, proxy screen")
    monitoring: Monitoring = Field(default_factory=Monitoring, description="production monitoring of the champion")
    reason_codes: dict[str, str] = Field(
        default_factory=dict,
        description="feature -> adverse-action reason text a decline or referral states (default: made from the "
        "feature name; `govern config check` warns of each feature without one)",
    )
    owners: Owners = Field(description="team, data scientists and business owner")

    @property
    def protected_columns(self) -> list[str]:
        return [p.column for p in self.protected_attributes]

    @property
    def retraining_cron(self) -> str:
        """When this model's scheduled retraining fires: `retrain_cron` moved by its offset in the spread window."""
        return spread_cron(self.monitoring.retrain_cron, self.name, self.monitoring.retrain_spread_minutes)

    @property
    def protected_sources(self) -> dict[str, str]:
        """Columns a protected attribute is computed from -> that attribute's column (the generator's own
        derivations included)."""
        sources = {column: p.column for p in self.protected_attributes for column in p.derived_from}
        if self.source.generator is not None:
            sources.update(
                {
                    column: attribute
                    for attribute, columns in PROTECTED_SOURCES.items()
                    if attribute in self.protected_columns
                    for column in columns
                }
            )
        return sources

    @field_validator("favourable_outcome", mode="before")
    @classmethod
    def _outcome_not_boolean(cls, outcome: Any) -> Any:
        if isinstance(outcome, bool):
            raise ValueError(
                f"{outcome} was read as a boolean: YAML reads unquoted no, yes, on, off, true and false as booleans; "
                "quote it (e.g. 'no')"
            )
        return outcome

    @model_validator(mode="after")
    def _roles_of_columns(self) -> GovernedModel:
        """The checks that relate fields to each other: every problem found is reported, not only the first."""
        problems = [*self._role_problems(), *self._contract_problems()]
        if problems:
            raise PydanticCustomError(MODEL_CHECKS, "; ".join(problems), {"problems": problems})
        return self

    def _role_problems(self) -> Iterator[str]:
        if not MODEL_NAME.match(self.name):
            yield f"model name {self.name!r} must be lower snake_case (letters, digits, _)"
        if isinstance(self.features, list):
            yield from self._listed_feature_problems(self.features)
        if self.target in self.protected_columns or self.id_column in self.protected_columns:
            yield "protected_attributes: the id or target column cannot be a protected attribute"

    def _listed_feature_problems(self, features: list[str]) -> Iterator[str]:
        protected, sources = set(self.protected_columns), self.protected_sources
        for column in features:
            if column in protected:
                yield (
                    f"features: {column!r} is a protected attribute and may never be a model feature "
                    "(remove it from features)"
                )
            elif column in sources:
                yield (
                    f"features: {column!r} is the source of protected attribute {sources[column]!r} "
                    "and may never be a model feature (remove it from features)"
                )
            elif column in (self.id_column, self.target):
                yield f"features: {column!r} is the id or target column (remove it from features)"
        if twice := sorted({c for c in features if features.count(c) > 1}):
            yield f"features: listed twice: {', '.join(twice)} (list each once)"

    def _contract_problems(self) -> Iterator[str]:
        """The data contract covers every column the config names, and each column suits its role (a column
        without a contract is named once, and its other checks wait for its contract)."""
        if self.source.file is not None and self.columns is None:
            yield "columns: a file source needs its data contract (one entry per column)"
            return
        columns = self.contract
        if missing := {column: role for column, role in self._named_columns().items() if column not in columns}:
            named = ", ".join(f"{column} (named in {role})" for column, role in sorted(missing.items()))
            yield (
                f"columns: no contract for {named}; add each to columns with its kind (and min and max, or its values)"
            )
        target = columns.get(self.target)
        if target is not None and (
            not target.values or len(target.values) != 2 or self.favourable_outcome not in target.values
        ):
            yield (
                f"columns.{self.target}: the target needs exactly two values including "
                f"favourable_outcome {self.favourable_outcome!r}"
            )
        for attribute in self.protected_attributes:
            if attribute.column in columns:
                yield from _group_problems(attribute, columns[attribute.column])
        features = {name: columns[name] for name in self.feature_columns if name in columns}
        yield from self._estimator_problems(features)
        yield from _range_problems(features)
        yield from self._reason_code_problems()

    def _named_columns(self) -> dict[str, str]:
        """Every column the config names outside `columns` -> the field naming it (the first, in this order)."""
        named: dict[str, str] = {}
        roles = [
            ("id_column", [self.id_column]),
            ("target", [self.target]),
            ("protected_attributes", self.protected_columns),
            ("protected_attributes.derived_from", [c for p in self.protected_attributes for c in p.derived_from]),
            ("features", self.features if isinstance(self.features, list) else []),
            ("exclude", self.exclude),
        ]
        for role, names in roles:
            for name in names:
                named.setdefault(name, role)
        return named

    def _reason_code_problems(self) -> Iterator[str]:
        features, contract = set(self.feature_columns), self.contract
        for name in sorted(set(self.reason_codes) - features):
            if name not in contract:
                why = "is not a column of the data contract (add it to columns, or remove this reason)"
            elif name in self.protected_columns or name in self.protected_sources:
                why = "is protected: a decision never gives it as a reason (remove this reason)"
            else:
                why = "is not a model feature (it is the id, the target or excluded; remove this reason)"
            yield f"reason_codes.{name}: {name!r} {why}"

    def _estimator_problems(self, features: dict[str, ColumnSpec]) -> Iterator[str]:
        """Features the configured estimator cannot fit or SHAP explain, refused before anything is trained."""
        kind = self.estimator.kind
        for name, spec in features.items():
            if kind == "logistic_regression" and spec.nullable and spec.kind != "category":
                yield (
                    f"columns.{name}: nullable, but logistic_regression cannot take missing values "
                    "(make the column required, exclude it, or choose a tree estimator)"
                )
            categories = len(spec.values or ()) + spec.nullable  # the estimator keeps "missing" as a category
            if kind == "hist_gradient_boosting" and spec.kind == "category" and categories > MAX_SHAP_CATEGORIES:
                yield (
                    f"columns.{name}: {categories} categories (a missing value counts), but SHAP "
                    f"explains a hist_gradient_boosting model's categorical splits of at most "
                    f"{MAX_SHAP_CATEGORIES} (group categories or exclude the column)"
                )

    @property
    def contract(self) -> dict[str, ColumnSpec]:
        """Every expected column with its spec (the generator's own contract when none is configured)."""
        if self.columns is not None:
            return self.columns
        return {name: ColumnSpec(**spec) for name, spec in CONTRACT.items()}

    @property
    def undocumented(self) -> list[str]:
        """Model card sections only this config can give and does not: the release gate's documentation rule
        (documentation.model_card_complete) denies every version whose card lacks one."""
        given = {
            "intended_use": bool(self.intended_use.strip()),
            "limitations": bool(self.limitations),
            "owners": bool(self.owners.data_scientists and self.owners.business_owner),
        }
        return [name for name, present in given.items() if not present]

    @property
    def reasons_without_text(self) -> list[str]:
        """Features a decision may give as a reason that have no `reason_codes` text: an adverse-action notice
        would state one made from the column name (`paid_sep` -> "Paid sep")."""
        return [f for f in self.feature_columns if f not in self.reason_codes and f not in self.protected_columns]

    def reason_text(self, feature: str) -> str:
        """The adverse-action reason a decision states for `feature`: its configured text, else its name."""
        return self.reason_codes.get(feature) or feature.replace("_", " ").strip().capitalize()

    @property
    def feature_columns(self) -> list[str]:
        """The model's features (resolves `features: all` against the data contract)."""
        if isinstance(self.features, list):
            return list(self.features)
        skip = {self.id_column, self.target, *self.protected_columns, *self.protected_sources, *self.exclude}
        return [c for c in self.contract if c not in skip]


def _range_problems(features: dict[str, ColumnSpec]) -> Iterator[str]:
    """Every numeric feature has a finite range, so the scoring API refuses e.g. 1e308 (its schema is the
    contract)."""
    for name, spec in features.items():
        if spec.kind in ("integer", "number") and not spec.values and (spec.min is None or spec.max is None):
            missing = " and ".join(bound for bound in ("min", "max") if getattr(spec, bound) is None)
            yield (
                f"columns.{name}: a numeric feature needs a finite range; add {missing} (the "
                "scoring API refuses values outside it, and validation refuses them in training data)"
            )


def _group_problems(attribute: ProtectedAttribute, spec: ColumnSpec) -> Iterator[str]:
    """A protected attribute has a few named groups, and its reference is one of them."""
    where = f"protected_attributes.{attribute.column}"
    numeric = spec.kind in ("integer", "number")
    if attribute.bands is not None and not numeric:
        yield f"{where}: bands need a numeric column (columns.{attribute.column} is {spec.kind})"
        return
    if attribute.bands is None and numeric and not spec.values:
        low = int(spec.min) if spec.min is not None else 18
        yield (
            f"{where}: a numeric column needs bands (left-closed edges), else every distinct value is a "
            f"group; e.g. bands: [{low}, 30, 40, 50, 65, 101], or give the column its values"
        )
        return
    if attribute.bands is not None:
        yield from _coverage_problems(where, attribute.bands, spec, attribute.column)
    groups = attribute.band_labels if attribute.bands is not None else [str(v) for v in spec.values or ()]
    if attribute.reference is not None and groups and attribute.reference not in groups:
        hint = difflib.get_close_matches(attribute.reference, groups, n=1)
        yield (
            f"{where}: reference {attribute.reference!r} is not one of its groups "
            f"({', '.join(repr(g) for g in groups)})" + (f"; did you mean {hint[0]!r}?" if hint else "")
        )


def _coverage_problems(where: str, bands: list[float], spec: ColumnSpec, column: str) -> Iterator[str]:
    """Every value the contract allows falls in a band: left-closed bands cover [first edge, last edge), so the
    column's max must lie below the last edge (a value in no band would be in no group, never judged)."""
    first, last = bands[0], bands[-1]
    if spec.min is None or spec.max is None:
        bound = "min" if spec.min is None else "max"
        yield (
            f"{where}: columns.{column} has no {bound}, so its bands cannot be shown to cover every value; "
            f"give the column a {bound}"
        )
        return
    uncovered, fix = [], [_edge(b) for b in bands]
    if spec.min < first:
        uncovered.append(f"{_edge(spec.min)} up to {_edge(first)} (below the first edge)")
        fix.insert(0, _edge(spec.min))
    if spec.max >= last:
        values = f"{_edge(last)}" if spec.max == last else f"{_edge(last)} to {_edge(spec.max)}"
        uncovered.append(f"{values} (bands are left-closed: the last edge is in no band)")
        fix[-1 if spec.max == last else len(fix) :] = [_edge(math.floor(spec.max) + 1)]
    if uncovered:
        yield (
            f"{where}: bands {[_edge(b) for b in bands]} do not cover columns.{column} (min {_edge(spec.min)}, "
            f"max {_edge(spec.max)}): values {' and '.join(uncovered)} fall in no group; e.g. bands: {fix}"
        )


def _edge(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


# The shortest period any retention setting allows: ledger verification refuses a retention run whose cut-off is
# closer to the run than this, so a forged run cannot explain away payloads removed from recent entries.
SHORTEST_RETENTION_DAYS = 1


class Retention(_Strict):
    """How long records keep their content. Digests in the ledger are kept forever.

    Defaults satisfy the longest requirement we map: Reg B keeps credit decision
    records 25 months (12 CFR 1002.12); technical documentation and logs of high-risk
    AI systems are kept 10 years (EU AI Act Art. 18)."""

    decision_features_days: int = Field(
        762, ge=SHORTEST_RETENTION_DAYS, description="decision inputs in the decision log (25 months)"
    )
    decision_log_days: int = Field(
        3653,
        ge=SHORTEST_RETENTION_DAYS,
        description="decision rows themselves, once their range is this old and was sealed this long ago",
    )
    ledger_payload_days: int = Field(
        3653, ge=SHORTEST_RETENTION_DAYS, description="ledger entry payloads (digests stay)"
    )

    @model_validator(mode="after")
    def _ordered(self) -> Retention:
        if self.decision_features_days > self.decision_log_days:
            raise ValueError("decision_features_days must not exceed decision_log_days")
        return self


class Serving(_Strict):
    """The scoring API's limits."""

    max_request_bytes: int = Field(
        65_536,
        ge=1024,
        le=10_485_760,
        description="request bodies over this are refused (413) before they are read; one application is ~1 KB",
    )


class GovernanceConfig(_Strict):
    """The file itself: its top-level keys."""

    path: Path = Field(description="set by the loader: the file the config was read from")
    models: dict[str, GovernedModel] = Field(description="every governed model, keyed by its name (at least one)")
    retention: Retention = Field(
        default_factory=Retention, description="how long records keep their content (all models)"
    )
    serving: Serving = Field(default_factory=Serving, description="the scoring API's limits (all models)")

    def model(self, name: str) -> GovernedModel:
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models)) or "none"
            raise ConfigError(f"{self.path}: unknown model {name!r} (governed models: {known})") from None


def load_config(path: str | Path) -> GovernanceConfig:
    """Load and validate a governance config; raise ConfigError naming file, model and field (every problem of
    every model)."""
    path = Path(path)
    raw = read_yaml(path, ConfigError, "config file", {("models",): "model"})
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), dict) or not raw["models"]:
        raise ConfigError(f"{path}: expected a mapping with a non-empty 'models' mapping at the top")
    sections: dict[str, type[_Strict]] = {"retention": Retention, "serving": Serving}
    problems = [
        f"{path}: {_unknown_key((), key, ['models', *sections])}" for key in sorted(set(raw) - {"models", *sections})
    ]
    models = {}
    for name, body in raw["models"].items():
        try:
            if not isinstance(body, dict):
                raise ConfigError(f"{path}: model {name!r}: expected a mapping of fields")
            models[name] = _parse_model(path, str(name), body)
        except ConfigError as exc:
            problems += exc.problems
    parsed = {name: _top_section(path, raw, name, schema, problems) for name, schema in sections.items()}
    if problems:
        raise ConfigError("\n".join(problems), problems)
    return GovernanceConfig(path=path, models=models, **parsed)


def _top_section(path: Path, raw: dict, name: str, schema: type[_Strict], problems: list[str]) -> _Strict | None:
    """A top-level section other than the models (its defaults where it is absent); its problems are added."""
    try:
        return schema(**(raw.get(name) or {}))
    except (ValidationError, TypeError) as exc:
        described = (
            [_describe(err, schema, (name,)) for err in exc.errors()]
            if isinstance(exc, ValidationError)
            else [f"{name}: {exc}"]
        )
        problems += [f"{path}: {problem}" for problem in described]
        return None


def _parse_model(path: Path, name: str, body: dict) -> GovernedModel:
    try:
        model = GovernedModel(name=name, **body)
    except ValidationError as exc:
        problems = [problem for err in exc.errors() for problem in _model_problems(err)]
        raise ConfigError(
            f"{path}: model {name!r}: " + "; ".join(problems),
            [f"{path}: model {name!r}: {problem}" for problem in problems],
        ) from None
    if model.source.file is not None and not model.source.file.path.is_absolute():
        resolved = FileSource(path=(path.parent / model.source.file.path).resolve())
        model = model.model_copy(update={"source": DataSource(file=resolved)})
    _check_file_header(path, model)
    return model


def data_file_problems(config: GovernanceConfig, names: list[str] | None = None) -> list[str]:
    """Each model's data file that does not exist or cannot be read (`govern config check`, and `govern train`
    before it creates anything). Not part of loading: a config still loads while its data is being replaced."""
    problems = []
    for name in names if names is not None else list(config.models):
        source = config.model(name).source.file
        if source is None:
            continue
        where = f"{config.path}: model {name!r}: field 'source.file.path': {source.path}"
        if not source.path.is_file():
            problems.append(f"{where}: data file not found (a relative path is relative to the config file)")
            continue
        try:
            with source.path.open("rb") as handle:
                handle.read(1)
        except OSError as exc:
            problems.append(f"{where}: cannot be read: {exc.strerror or exc}")
    return problems


def _check_file_header(path: Path, model: GovernedModel) -> None:
    """A CSV source's header names exactly the contract's columns (read before anything is trained)."""
    source = model.source.file
    if source is None or source.path.suffix.lower() != ".csv" or not source.path.is_file():
        return
    try:
        with source.path.open("rb") as handle:
            header = next(csv.reader([handle.readline().decode("utf-8-sig")]), [])
    except (OSError, UnicodeDecodeError):
        return  # reading the data names the problem
    if not header:
        return
    problems = []
    if uncovered := [c for c in header if c not in model.contract]:
        problems.append(
            f"the file has columns with no contract: {', '.join(uncovered)} (add each to columns, "
            "with exclude if it is not a feature)"
        )
    if absent := [c for c in model.contract if c not in header]:
        problems.append(
            f"columns in the contract are not in the file: {', '.join(absent)} (remove each from columns, or "
            "give the file the column)"
        )
    if problems:
        where = f"{path}: model {model.name!r}: field 'columns': {source.path}: "
        raise ConfigError(where + "; ".join(problems), [where + problem for problem in problems])


def _model_problems(error: ErrorDetails) -> list[str]:
    """A governed model's validation error as problems: each one its cross-field checks found, else the one."""
    if error["type"] == MODEL_CHECKS:
        return list(error.get("ctx", {})["problems"])
    return [_describe(error, GovernedModel)]


def _describe(error: ErrorDetails, schema: type[BaseModel], prefix: tuple = ()) -> str:
    loc = tuple(error["loc"])
    field = ".".join(str(part) for part in prefix + loc) or "(model)"
    if error["type"] == "extra_forbidden":
        return _unknown_key(prefix + loc[:-1], str(loc[-1]), _allowed_keys(schema, loc[:-1]))
    message = error["msg"].removeprefix("Value error, ")
    return f"field '{field}': {message}" if loc else message  # a model-wide check names its own field


def _unknown_key(where: tuple, key: str, allowed: list[str]) -> str:
    """An unknown key, with the allowed keys and the closest of them."""
    field = ".".join(str(part) for part in (*where, key))
    closest = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f"; did you mean {closest[0]!r}?" if closest else ""
    removed = REMOVED_KEYS.get(key)
    if removed:
        return f"field '{field}': {removed}"
    return f"field '{field}': unknown key{hint} (allowed: {', '.join(allowed)})"


# Keys a config may still carry from an older version, with what to do about them.
REMOVED_KEYS = {
    "proxy_top_k": "no longer used: every feature is proxy-screened (see proxy_flag_strength and "
    "proxy_encoding_strength); remove it"
}


def _allowed_keys(schema: type[BaseModel] | None, loc: tuple) -> list[str]:
    """The field names of the config section at `loc` (list indexes and mapping keys stepped over)."""
    for part in loc:
        field = schema.model_fields.get(str(part)) if schema else None
        if field is not None:  # else a list index or a mapping key (a column's name): same section
            schema = _section(field.annotation)
    return sorted(n for n in schema.model_fields if n != "name" or schema is not GovernedModel) if schema else []


def _section(annotation) -> type[BaseModel] | None:
    """The config section class inside an annotation such as `X | None`, `list[X]` or `dict[str, X]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in reversed(typing.get_args(annotation)):
        found = _section(arg)
        if found is not None:
            return found
    return None
