"""Governed models as configuration.

`governance.yaml` (or `GOVERN_CONFIG`, or `--config`) lists every governed model.
Adding an entry adds that model's asset graph; no code changes. The file is
validated on load and every error names the file, the model and the field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from governance.errors import GovernanceError
from governance.yamlfile import read_yaml

MODEL_NAME = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
RiskTier = Literal["high", "medium", "low"]
EstimatorKind = Literal["hist_gradient_boosting", "logistic_regression", "random_forest"]
# SHAP's categorical split reads its category set from a float32 bit mask: categories 1..24 at most.
MAX_SHAP_CATEGORIES = 24


class ConfigError(GovernanceError):
    """A configuration file is invalid. The message names file, model and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GeneratorSource(_Strict):
    """The built-in synthetic credit-applications generator (see governance.data.generator)."""

    rows: int = Field(50_000, ge=100, le=50_000_000)
    seed: int = 7
    bias: float = Field(0.0, ge=0.0, le=1.0, description="historical bias against the disadvantaged group")
    drift: float = Field(0.0, ge=0.0, le=1.0, description="population shift away from the baseline")
    proxy: float = Field(0.0, ge=0.0, le=1.0, description="strength of a feature that leaks sex")


class FileSource(_Strict):
    """A CSV or Parquet file, resolved relative to the config file."""

    path: Path

    @field_validator("path")
    @classmethod
    def _known_format(cls, value: Path) -> Path:
        if value.suffix.lower() not in {".csv", ".parquet"}:
            raise ValueError(f"unsupported data file type {value.suffix!r} (use .csv or .parquet)")
        return value


class DataSource(_Strict):
    generator: GeneratorSource | None = None
    file: FileSource | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "DataSource":
        if (self.generator is None) == (self.file is None):
            raise ValueError("give exactly one of 'generator' or 'file'")
        return self


class ProtectedAttribute(_Strict):
    """A column measured for fairness. Never a model feature.

    Numeric columns are cut into `bands` (left-closed edges) so groups exist.
    `reference` is the group others are compared with (default: the largest).
    """

    column: str
    name: str | None = None
    bands: list[float] | None = None
    reference: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.column

    @field_validator("bands")
    @classmethod
    def _increasing(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (len(value) < 2 or any(b <= a for a, b in zip(value, value[1:]))):
            raise ValueError("bands must be at least two strictly increasing edges")
        return value


ColumnKind = Literal["integer", "number", "category", "boolean"]


class ColumnSpec(_Strict):
    """The data contract of one column, turned into Great Expectations expectations."""

    kind: ColumnKind
    min: float | None = None
    max: float | None = None
    values: list[int | str] | None = None
    nullable: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> "ColumnSpec":
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        if self.values is not None and self.kind not in ("integer", "category"):
            raise ValueError("values are only for integer or category columns")
        if self.kind == "category" and not self.values:
            raise ValueError("a category column needs its allowed values")
        return self


class Estimator(_Strict):
    kind: EstimatorKind = "hist_gradient_boosting"
    params: dict[str, Any] = Field(default_factory=dict)


class Decisioning(_Strict):
    """How a score (probability of the unfavourable outcome) becomes a decision."""

    approve_below: float = Field(0.2, gt=0, lt=1)
    decline_at_or_above: float = Field(0.5, gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> "Decisioning":
        if self.approve_below > self.decline_at_or_above:
            raise ValueError("approve_below must not exceed decline_at_or_above")
        return self


class Evaluation(_Strict):
    test_fraction: float = Field(0.25, gt=0.05, lt=0.9)
    bootstrap_samples: int = Field(200, ge=20, le=5000)
    confidence: float = Field(0.95, gt=0.5, lt=1)
    shap_sample_rows: int = Field(1000, ge=50, le=100_000)
    proxy_flag_strength: float = Field(
        0.5, gt=0, le=1, description="flag a feature as a proxy when its strength times its importance share "
                                     "(mean |SHAP| over the top feature's) reaches this")
    proxy_encoding_strength: float = Field(
        0.95, gt=0, le=1, description="flag a feature as a proxy when its strength alone reaches this, whatever its "
                                      "importance (it encodes a protected attribute)")
    min_group_size: int = Field(30, ge=1)


class Monitoring(_Strict):
    """Production monitoring of the champion's decisions (thresholds live in the policy files)."""

    collect_protected_attributes: bool = Field(
        False, description="log protected attributes sent with requests, for fairness monitoring only")
    window_size: int = Field(500, ge=20, description="decisions per monitoring window")
    min_window_size: int = Field(200, ge=10, description="never judge a smaller window")
    check_interval_seconds: int = Field(30, ge=1, description="how often the sensors look")
    retrain_cron: str = Field("0 3 * * 1", description="scheduled retraining (cron, UTC)")

    @model_validator(mode="after")
    def _sizes(self) -> "Monitoring":
        if self.min_window_size > self.window_size:
            raise ValueError("min_window_size must not exceed window_size")
        return self


class Owners(_Strict):
    team: str
    data_scientists: list[str] = Field(min_length=1)
    business_owner: str


class GovernedModel(_Strict):
    name: str
    description: str = ""
    intended_use: str = ""
    limitations: list[str] = Field(default_factory=list, description="known limits, printed on the model card")
    source: DataSource
    columns: dict[str, ColumnSpec] | None = Field(
        None, description="data contract; optional for the generator, which brings its own")
    min_rows: int = Field(1000, ge=10)
    id_column: str
    target: str
    favourable_outcome: int | str
    features: Literal["all"] | list[str] = "all"
    exclude: list[str] = Field(default_factory=list, description="columns never used as features")
    protected_attributes: list[ProtectedAttribute] = Field(min_length=1)
    risk_tier: RiskTier
    estimator: Estimator = Field(default_factory=Estimator)
    decisioning: Decisioning = Field(default_factory=Decisioning)
    evaluation: Evaluation = Field(default_factory=Evaluation)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    reason_codes: dict[str, str] = Field(
        default_factory=dict, description="feature -> adverse-action reason text (default: from the feature name)")
    owners: Owners

    @property
    def protected_columns(self) -> list[str]:
        return [p.column for p in self.protected_attributes]

    @model_validator(mode="after")
    def _roles_of_columns(self) -> "GovernedModel":
        if not MODEL_NAME.match(self.name):
            raise ValueError(f"model name {self.name!r} must be lower snake_case (letters, digits, _)")
        protected = set(self.protected_columns)
        reserved = {self.id_column, self.target}
        if isinstance(self.features, list):
            for column in self.features:
                if column in protected:
                    raise ValueError(f"features: {column!r} is a protected attribute and may never be a model feature")
                if column in reserved:
                    raise ValueError(f"features: {column!r} is the id or target column")
            if len(set(self.features)) != len(self.features):
                raise ValueError("features: listed twice: " + ", ".join(sorted({c for c in self.features if self.features.count(c) > 1})))
        if self.target in protected or self.id_column in protected:
            raise ValueError("protected_attributes: the id or target column cannot be a protected attribute")
        if self.source.file is not None and self.columns is None:
            raise ValueError("columns: a file source needs its data contract (one entry per column)")
        self._check_contract(self.contract)
        unknown = sorted(set(self.reason_codes) - set(self.feature_columns))
        if unknown:
            raise ValueError(f"reason_codes: not model features: {', '.join(unknown)}")
        return self

    def _check_contract(self, columns: dict[str, "ColumnSpec"]) -> None:
        named = {self.id_column, self.target, *self.protected_columns, *self.exclude}
        if isinstance(self.features, list):
            named.update(self.features)
        missing = sorted(named - set(columns))
        if missing:
            raise ValueError(f"columns: no contract for {', '.join(missing)}")
        target = columns[self.target]
        if not target.values or len(target.values) != 2 or self.favourable_outcome not in target.values:
            raise ValueError(f"columns.{self.target}: the target needs exactly two values including "
                             f"favourable_outcome {self.favourable_outcome!r}")
        for attribute in self.protected_attributes:
            spec = columns[attribute.column]
            if attribute.bands is not None and spec.kind not in ("integer", "number"):
                raise ValueError(f"protected_attributes.{attribute.column}: bands need a numeric column")
            known = None if attribute.bands is not None or spec.values is None else [str(v) for v in spec.values]
            if attribute.reference is not None and known is not None and attribute.reference not in known:
                raise ValueError(f"protected_attributes.{attribute.column}: reference {attribute.reference!r} is not "
                                 f"one of the column's values ({', '.join(known)})")
        self._check_features_fit_estimator(columns)

    def _check_features_fit_estimator(self, columns: dict[str, "ColumnSpec"]) -> None:
        """Refuse, before anything is trained, features the configured estimator cannot fit or SHAP explain."""
        kind = self.estimator.kind
        for name in self.feature_columns:
            spec = columns[name]
            if kind == "logistic_regression" and spec.nullable and spec.kind != "category":
                raise ValueError(f"columns.{name}: nullable, but logistic_regression cannot take missing values "
                                 "(make the column required, exclude it, or choose a tree estimator)")
            categories = len(spec.values or ()) + spec.nullable  # the estimator keeps "missing" as a category
            if kind == "hist_gradient_boosting" and spec.kind == "category" and categories > MAX_SHAP_CATEGORIES:
                raise ValueError(f"columns.{name}: {categories} categories (a missing value counts), but SHAP "
                                 f"explains a hist_gradient_boosting model's categorical splits of at most "
                                 f"{MAX_SHAP_CATEGORIES} (group categories or exclude the column)")

    @property
    def contract(self) -> dict[str, ColumnSpec]:
        """Every expected column with its spec (the generator's own contract when none is configured)."""
        if self.columns is not None:
            return self.columns
        # Imported here: the trust core imports this module, and the generator brings pandas (0.4 s per CLI call).
        from governance.data.generator import CONTRACT

        return {name: ColumnSpec(**spec) for name, spec in CONTRACT.items()}

    @property
    def feature_columns(self) -> list[str]:
        """The model's features (resolves `features: all` against the data contract)."""
        if isinstance(self.features, list):
            return list(self.features)
        skip = {self.id_column, self.target, *self.protected_columns, *self.exclude}
        return [c for c in self.contract if c not in skip]


class Retention(_Strict):
    """How long records keep their content. Digests in the ledger are kept forever.

    Defaults satisfy the longest requirement we map: Reg B keeps credit decision
    records 25 months (12 CFR 1002.12); technical documentation and logs of high-risk
    AI systems are kept 10 years (EU AI Act Art. 18)."""

    decision_features_days: int = Field(762, ge=1, description="decision inputs in the decision log (25 months)")
    decision_log_days: int = Field(3653, ge=1, description="decision rows themselves")
    ledger_payload_days: int = Field(3653, ge=1, description="ledger entry payloads (digests stay)")

    @model_validator(mode="after")
    def _ordered(self) -> "Retention":
        if self.decision_features_days > self.decision_log_days:
            raise ValueError("decision_features_days must not exceed decision_log_days")
        return self


class GovernanceConfig(_Strict):
    path: Path
    models: dict[str, GovernedModel]
    retention: Retention = Field(default_factory=Retention)

    def model(self, name: str) -> GovernedModel:
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models)) or "none"
            raise ConfigError(f"{self.path}: unknown model {name!r} (governed models: {known})") from None


def load_config(path: str | Path) -> GovernanceConfig:
    """Load and validate a governance config; raise ConfigError naming file, model and field."""
    path = Path(path)
    raw = read_yaml(path, ConfigError, "config file", {("models",): "model"})
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), dict) or not raw["models"]:
        raise ConfigError(f"{path}: expected a mapping with a non-empty 'models' mapping at the top")
    unknown = set(raw) - {"models", "retention"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level field(s): {', '.join(sorted(unknown))}")
    models = {}
    for name, body in raw["models"].items():
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: model {name!r}: expected a mapping of fields")
        models[name] = _parse_model(path, str(name), body)
    try:
        retention = Retention(**(raw.get("retention") or {}))
    except (ValidationError, TypeError) as exc:
        problems = "; ".join(_describe(err) for err in exc.errors()) if isinstance(exc, ValidationError) else str(exc)
        raise ConfigError(f"{path}: retention: {problems}") from None
    return GovernanceConfig(path=path, models=models, retention=retention)


def _parse_model(path: Path, name: str, body: dict) -> GovernedModel:
    try:
        model = GovernedModel(name=name, **body)
    except ValidationError as exc:
        problems = "; ".join(_describe(err) for err in exc.errors())
        raise ConfigError(f"{path}: model {name!r}: {problems}") from None
    if model.source.file is not None and not model.source.file.path.is_absolute():
        resolved = FileSource(path=(path.parent / model.source.file.path).resolve())
        model = model.model_copy(update={"source": DataSource(file=resolved)})
    return model


def _describe(error: dict) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "(model)"
    message = error["msg"].removeprefix("Value error, ")
    return f"field '{field}': {message}"
