"""The request schema of a model's decision endpoint, built from its data contract.

One field per model feature, typed and bounded as the contract says (kind, min,
max, allowed values, nullable); unknown fields are refused. Protected attributes
are accepted only when the model collects them for fairness monitoring; otherwise
sending one is an error naming it, so they are never received, let alone stored.
Validation is strict: no string-to-number coercion, no booleans as numbers, no
NaN or infinity.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from governance.config import ColumnSpec, GovernedModel

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)


class ApplicationSchema:
    """The pydantic model of one application for a governed model, and how to split a validated one."""

    def __init__(self, model: GovernedModel) -> None:
        # Resolved once: GovernedModel derives its column lists from the contract on every access.
        self.features, self.protected = model.feature_columns, model.protected_columns
        contract = model.contract
        fields: dict[str, Any] = {column: _field(contract[column], required=True) for column in self.features}
        collected = model.monitoring.collect_protected_attributes
        for column in self.protected:
            fields[column] = _field(contract[column], required=False) if collected else _refused(model, column)
        title = "".join(part.title() for part in model.name.split("_")) + "Application"
        self.pydantic: type[BaseModel] = create_model(title, __config__=_STRICT, **fields)

    def split(self, application: BaseModel) -> tuple[dict, dict | None]:
        """The validated features (every one, nulls included) and the protected attributes sent, if any."""
        values, sent = application.__dict__, application.model_fields_set
        features = {column: values[column] for column in self.features}
        protected = {column: values[column] for column in self.protected if column in sent}
        return features, protected or None


def _field(spec: ColumnSpec, required: bool) -> tuple[Any, Any]:
    """A feature is `required`: a nullable one may be null, never left out (a client that drops a field by
    mistake would get a decision on a missing value, quietly another one)."""
    kind = _kind(spec)
    if spec.nullable or not required:
        kind = kind | None
    return kind, ... if required else None


def _kind(spec: ColumnSpec) -> Any:
    if spec.kind == "category":
        return Literal[tuple(spec.values or ())]
    if spec.kind == "boolean":
        return bool
    bounds: dict[str, Any] = {"ge": spec.min, "le": spec.max}
    if spec.kind == "integer":  # a strict int (a Literal of ints would let true pass as 1)
        return Annotated[int, Field(**bounds), *([AfterValidator(_one_of(spec.values))] if spec.values else [])]
    return Annotated[float, Field(allow_inf_nan=False, **bounds)]


def _one_of(values: list) -> Any:
    allowed = set(values)

    def check(value: int) -> int:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(map(str, values))}")
        return value

    return check


def _refused(model: GovernedModel, column: str) -> tuple[Any, None]:
    def refuse(_value: Any) -> Any:
        raise ValueError(
            f"{column!r} is a protected attribute and model {model.name!r} does not collect protected "
            "attributes (monitoring.collect_protected_attributes is off); do not send it"
        )

    return Annotated[Any, AfterValidator(refuse)], None


class Reason(BaseModel):
    code: str
    feature: str
    text: str


class DecisionAnswer(BaseModel):
    """What a decision endpoint returns (the decision is in the decision log before this is sent)."""

    decision_id: str
    model: str
    version: int | None = Field(description="the champion version that scored it; null in the safe state")
    score: float | None = Field(description="probability of the unfavourable outcome; null in the safe state")
    outcome: Literal["approve", "decline", "refer"]
    reasons: list[Reason] = Field(description="at most four principal reasons, strongest first")
    safe_state: bool = Field(
        description="true when referred because the kill switch is on, no governed "
        "champion could be served, or the champion could not score or explain "
        "this application (safe_state_reason says which)"
    )
    safe_state_reason: str | None
    ts: str
