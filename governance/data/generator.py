"""A seeded, vectorised generator of synthetic credit applications.

Each row is one application with realistic features, two protected attributes
(`sex`, `age_band`) and a `default` outcome drawn from a known ground-truth
logistic process (`true_default_probability`). Three knobs let the rest of the
system show its controls working:

- `bias`: historical bias against women. Their recorded incomes and credit
  limits are depressed and their outcomes were recorded as defaults more often
  than their true risk implies, so a model trained on this history selects them
  less often. The fairness gate should block it.
- `drift`: a population shift (younger, lower-income, more indebted applicants).
  The drift monitors should fire.
- `proxy`: `occupation_group` becomes a near-copy of `sex`. The explainability
  proxy check should flag it once the model leans on it.

One million rows take about a second and a half.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from governance.data import contract
from governance.data.contract import CONTRACT, ID_COLUMN, PROTECTED_SOURCES, TARGET  # noqa: F401 (re-exported)

EMPLOYMENT, HOUSING, PURPOSE = np.array(contract.EMPLOYMENT), np.array(contract.HOUSING), np.array(contract.PURPOSE)
OCCUPATION, AGE_BANDS, TERMS = np.array(contract.OCCUPATION), np.array(contract.AGE_BANDS), np.array(contract.TERMS)


def generate_applications(
    rows: int, seed: int = 7, bias: float = 0.0, drift: float = 0.0, proxy: float = 0.0
) -> pd.DataFrame:
    """Return `rows` synthetic applications; the same arguments give the same frame."""
    rng = np.random.default_rng(seed)
    female = rng.random(rows) < 0.48
    age = np.clip(rng.gamma(6.0, 4.5, rows) + 15 - 8 * drift, 18, 85).round().astype(np.int64)
    retired = (age >= 63) & (rng.random(rows) < 0.5)
    employment = np.where(retired, 3, rng.choice([0, 1, 2, 4], rows, p=[0.68, 0.14, 0.12, 0.06]))
    employment_years = np.where(employment >= 3, 0.0, np.minimum(rng.exponential(6.0, rows), age - 17.0)).round(1)

    log_income = 10.7 + rng.normal(0, 0.45, rows)
    log_income -= np.where(employment == 4, 0.9, 0.0) + np.where(employment == 3, 0.3, 0.0)
    log_income -= 0.25 * drift + bias * 0.35 * female
    annual_income = np.exp(log_income).round(-2)

    history_years = np.clip(rng.normal(0.55, 0.2, rows) * (age - 18), 0, 60).round(1)
    open_accounts = rng.poisson(3 + history_years / 6).astype(np.int64)
    utilisation = np.clip(rng.beta(2.0, 4.0, rows) + 0.18 * drift + 0.12 * bias * female, 0, 1.2).round(3)
    delinquencies = rng.poisson(0.25 + 0.6 * utilisation + 0.3 * drift).astype(np.int64)
    inquiries = rng.poisson(0.8 + 1.2 * drift, rows).astype(np.int64)

    loan_amount = np.clip(np.exp(rng.normal(9.2, 0.7, rows)) * (1 + 0.3 * drift), 500, 150_000).round(-1)
    term = TERMS[rng.choice(5, rows, p=[0.1, 0.2, 0.35, 0.15, 0.2])]
    monthly_debt = annual_income / 12 * np.clip(rng.beta(2, 6, rows) + 0.1 * drift, 0, 0.9)
    monthly_payment = loan_amount / term * 1.08
    debt_to_income = np.clip((monthly_debt + monthly_payment) / (annual_income / 12), 0, 3).round(3)
    housing = np.where(
        age > 35, rng.choice(4, rows, p=[0.3, 0.4, 0.25, 0.05]), rng.choice(4, rows, p=[0.2, 0.35, 0.35, 0.1])
    )
    purpose = rng.choice(7, rows, p=[0.35, 0.15, 0.15, 0.07, 0.06, 0.07, 0.15])
    savings = np.round(np.maximum(0, rng.lognormal(7.5, 1.3, rows) * (annual_income / 45_000) - 500), -1)
    dependents = rng.poisson(0.9, rows).astype(np.int64)
    existing_customer = (rng.random(rows) < 0.4).astype(np.int64)

    leaks_sex = rng.random(rows) < proxy
    occupation = np.where(leaks_sex, np.where(female, 2, 1), rng.choice(6, rows))

    p_default = true_default_probability(
        annual_income=annual_income,
        debt_to_income=debt_to_income,
        utilisation=utilisation,
        delinquencies=delinquencies,
        history_years=history_years,
        inquiries=inquiries,
        employment=employment,
        term=term,
        savings=savings,
        housing=housing,
    )
    recorded_logit = _logit(p_default) + bias * 1.4 * female
    default = (rng.random(rows) < _sigmoid(recorded_logit)).astype(np.int64)

    return pd.DataFrame(
        {
            ID_COLUMN: np.arange(1, rows + 1, dtype=np.int64) + seed * 10_000_000_000,
            "age": age,
            "annual_income": annual_income,
            "employment_type": _categorical(employment, EMPLOYMENT),
            "employment_years": employment_years,
            "housing": _categorical(housing, HOUSING),
            "loan_purpose": _categorical(purpose, PURPOSE),
            "loan_amount": loan_amount,
            "loan_term_months": term.astype(np.int64),
            "debt_to_income": debt_to_income,
            "credit_utilisation": utilisation,
            "credit_history_years": history_years,
            "open_accounts": open_accounts,
            "delinquencies_2y": delinquencies,
            "inquiries_6m": inquiries,
            "savings_balance": savings,
            "dependents": dependents,
            "existing_customer": existing_customer,
            "occupation_group": _categorical(occupation, OCCUPATION),
            "sex": _categorical(female.astype(np.int8), np.array(["M", "F"])),
            "age_band": _categorical(np.digitize(age, [25, 40, 60]), AGE_BANDS),
            TARGET: default,
        }
    )


def true_default_probability(
    *,
    annual_income,
    debt_to_income,
    utilisation,
    delinquencies,
    history_years,
    inquiries,
    employment,
    term,
    savings,
    housing,
) -> np.ndarray:
    """The ground-truth risk: a logistic function of the applicant's real circumstances."""
    logit = (
        -3.3
        - 0.8 * (np.log(annual_income) - 10.7)
        + 1.9 * np.minimum(debt_to_income, 2.0)
        + 2.4 * utilisation
        + 0.6 * np.minimum(delinquencies, 5)
        - 0.004 * np.minimum(history_years, 30)
        + 0.15 * np.minimum(inquiries, 8)
        + np.array([0.0, 0.3, 0.35, 0.0, 1.1])[employment]
        + 0.01 * (term - 36)
        - 0.15 * np.log1p(savings / 1000)
        + np.array([-0.1, -0.05, 0.05, 0.1])[housing]
    )
    return _sigmoid(logit)


def _categorical(codes: np.ndarray, labels: np.ndarray) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=labels.tolist())


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))
