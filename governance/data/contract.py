"""The built-in generator's data contract and category sets, without the generator (nor numpy or pandas):
loading a config that uses the generator reads only this."""

from __future__ import annotations

EMPLOYMENT = ["salaried", "self_employed", "contract", "retired", "unemployed"]
HOUSING = ["own", "mortgage", "rent", "other"]
PURPOSE = ["debt_consolidation", "home_improvement", "car", "education", "medical", "business", "other"]
OCCUPATION = ["office", "trades", "care", "technical", "service", "management"]
AGE_BANDS = ["18-24", "25-39", "40-59", "60+"]
TERMS = [12, 24, 36, 48, 60]

ID_COLUMN = "application_id"
TARGET = "default"

# The generator's data contract (the shape of governance.config.ColumnSpec).
CONTRACT: dict[str, dict] = {
    ID_COLUMN: {"kind": "integer", "min": 1},
    "age": {"kind": "integer", "min": 18, "max": 100},
    "annual_income": {"kind": "number", "min": 0, "max": 10_000_000},
    "employment_type": {"kind": "category", "values": EMPLOYMENT},
    "employment_years": {"kind": "number", "min": 0, "max": 70},
    "housing": {"kind": "category", "values": HOUSING},
    "loan_purpose": {"kind": "category", "values": PURPOSE},
    "loan_amount": {"kind": "number", "min": 100, "max": 1_000_000},
    "loan_term_months": {"kind": "integer", "values": TERMS},
    "debt_to_income": {"kind": "number", "min": 0, "max": 5},
    "credit_utilisation": {"kind": "number", "min": 0, "max": 2},
    "credit_history_years": {"kind": "number", "min": 0, "max": 80},
    "open_accounts": {"kind": "integer", "min": 0, "max": 200},
    "delinquencies_2y": {"kind": "integer", "min": 0, "max": 100},
    "inquiries_6m": {"kind": "integer", "min": 0, "max": 100},
    "savings_balance": {"kind": "number", "min": 0, "max": 100_000_000},
    "dependents": {"kind": "integer", "min": 0, "max": 20},
    "existing_customer": {"kind": "integer", "values": [0, 1]},
    "occupation_group": {"kind": "category", "values": OCCUPATION},
    "sex": {"kind": "category", "values": ["F", "M"]},
    "age_band": {"kind": "category", "values": AGE_BANDS},
    TARGET: {"kind": "integer", "values": [0, 1]},
}

# Protected attribute -> the columns it is computed from (never features either).
PROTECTED_SOURCES: dict[str, list[str]] = {"age_band": ["age"]}
