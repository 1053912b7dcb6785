"""The fairness guard: harm contained while its window fills, by the same signed, Cedar-authorised kill switch as
remediation; no containment on healthy traffic; a card it cannot read arms nothing and says so (real decision
log, real sealed reports, real Cedar)."""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from datetime import timedelta

import numpy as np
import pytest

from governance import events, training
from governance.config import ProtectedAttribute, load_config
from governance.data.generator import generate_applications
from governance.decisions import DecisionLog
from governance.lineage.decision_seals import SETTLE
from governance.metrics.fairness import protected_groups
from governance.monitoring import guard_watch
from governance.monitoring.guard import Armed, FairnessGuard, GuardNotArmed, Observation, arm
from governance.monitoring.guard_watch import FAIRNESS_REPORT, GuardWatch, _Groups
from governance.monitoring.monitor import monitor_for
from governance.monitoring.reference import sealed_report
from governance.monitoring.sequential import Counts, Prior, log_evidence_outside
from governance.policy.bundle import PolicyBundle
from tests.helpers import REPO, travel
from tests.monitoring.conftest import MODEL, Monitored

BATCH = 10  # about what the API's micro-batches hold at 100 decisions a second
HEALTHY_WINDOWS = 24


def _armed(monitored: Monitored, version: int = 2):
    report, where, sha = sealed_report(monitored.services, monitored.model, version, FAIRNESS_REPORT)
    assert report is not None, where
    return arm(monitor_for(monitored.settings).policies(), monitored.model, version, report, sha, where)


def test_a_fairness_breach_is_contained_before_its_window_completes(monitored: Monitored):
    watch = GuardWatch(monitored.settings)
    served, contained, seed = 0, [], 5000
    while not contained:
        answers = monitored.send(
            seed=seed, rows=BATCH, bias=3.0
        )  # women approved far less often (the small test model needs a strong bias)
        served += sum(not a["safe_state"] for a in answers)
        contained, seed = watch.poll(), seed + 1
        assert served < monitored.model.monitoring.window_size, "the whole window was served before containment"
    print(f"contained after {served} harmful decisions")

    services = monitored.services
    switch = services.control.kill_switch(MODEL)
    assert switch.disabled and switch.changed_by == "system" and "fairness guard" in switch.reason
    flipped = services.ledger.latest(events.KillSwitchOn, model=MODEL)
    statement = services.statements.find(action="disable", model=MODEL)[0]
    assert flipped.actor == "system" and statement.signed.statement.principal == "system"
    assert flipped.statement == statement.signed.digest
    (found,) = monitored.ledger(events.GuardContained)
    assert found.seq == contained[0].ledger_seq and found.seq > flipped.seq
    assert found.actions == ("kill_switch",) and found.contained and found.statement == flipped.statement
    assert set(found.rules) == {"monitoring.fairness_guard", "monitoring.contain_by_kill_switch"}
    evidence = found.evidence
    assert evidence["evidence"] >= 100 and evidence["decisions"] == served == found.decisions
    assert evidence["strongest"]["attribute"] == "sex" and evidence["strongest"]["side"] == "below"
    assert found.card == _armed(monitored).card  # armed with the sealed card's figures
    assert services.ledger.verify().ok
    assert all(a["outcome"] == "refer" for a in monitored.send(seed=seed, rows=BATCH, bias=3.0))  # the safe state
    assert watch.poll() == []  # safe-state decisions judge nothing

    (request,) = monitored.tick("guard_reports").run_requests  # the report follows, for the record
    assert request.tags["governance/window"] == found.window
    assert monitored.run(request).success
    (reported,) = [a for a in monitored.ledger(events.MonitoringAlert) if a.window == found.window]
    # every live figure of the guard's decisions (the window rule judges fairness from min_window_size on)
    assert reported.summary.startswith(f"credit_scoring-v2 window {found.window} ({served} live decisions)")
    assert "fairness" in reported.summary
    assert "the kill switch is already on" in " ".join(monitored.ledger(events.RemediationDecided)[-1].notes)
    assert not monitored.tick("guard_reports").run_requests


def test_healthy_windows_are_never_contained(monitored: Monitored):
    """24 windows of the baseline population decided by the champion (scored in one pass: fast), fed to the
    armed guard in log order; its evidence must stay below the policy's 1/alpha (100) in every window."""
    armed, model = _armed(monitored), monitored.model
    frame = generate_applications(HEALTHY_WINDOWS * model.monitoring.window_size, seed=7100)
    pipeline = monitor_for(monitored.settings).references.pipeline(model, 2)
    approved = training.score(pipeline, model, frame) < model.decisioning.approve_below
    groups = protected_groups(model, frame[model.protected_columns])
    observed = [
        Observation(i + 1, 2, bool(approved[i]), {name: labels[i] for name, labels in groups.items()})
        for i in range(len(frame))
    ]
    guard, strongest = FairnessGuard(armed), []
    for start in range(0, len(observed), BATCH):
        finding = guard.observe(observed[start : start + BATCH])
        strongest.append(finding.evidence if finding else 0.0)
    print(f"largest evidence over {HEALTHY_WINDOWS} healthy windows: {max(strongest):.3g} (contains at 100)")
    assert max(strongest) < 100


def test_a_changed_fairness_report_arms_nothing_says_so_once_and_does_not_crash(monitored: Monitored, caplog):
    _, where, _ = sealed_report(monitored.services, monitored.model, 2, FAIRNESS_REPORT)
    sealed = next((monitored.settings.model_dir(MODEL, "credit_scoring-v2") / "evidence").rglob(FAIRNESS_REPORT))
    sealed.write_text(json.dumps({"attributes": {}}))  # after approval: the pack no longer verifies
    watch = GuardWatch(monitored.settings)
    with caplog.at_level(logging.ERROR, logger="governance.monitoring.guard_watch"):
        for seed in range(6000, 6030):
            monitored.send(seed=seed, rows=BATCH, bias=3.0)
            assert watch.poll() == []
    (refused,) = monitored.ledger(events.GuardNotArmed)
    assert refused.version == "credit_scoring-v2" and "evidence pack cannot be used" in refused.reason
    assert "guard not armed for credit_scoring-v2" in caplog.text
    assert not monitored.services.control.kill_switch(MODEL).disabled  # the sensors still judge its windows
    assert monitored.ledger(events.GuardContained) == []


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda r: r.pop("attributes"), "no 'attributes' object"),
        (lambda r: r["attributes"].pop("sex"), "attributes.sex: missing"),
        (lambda r: r["attributes"]["sex"]["groups"]["F"].update(selection_rate=1.7), "groups.F.selection_rate is 1.7"),
        (lambda r: r["attributes"]["sex"].update(reference_group="X"), "reference_group 'X' is not among"),
    ],
)
def test_bad_card_figures_are_refused_naming_the_field(monitored: Monitored, change, problem):
    report, where, sha = sealed_report(monitored.services, monitored.model, 2, FAIRNESS_REPORT)
    change(report)
    with pytest.raises(GuardNotArmed, match="fairness.json: .*" + re.escape(problem)):
        arm(monitor_for(monitored.settings).policies(), monitored.model, 2, report, sha, where)


def test_a_policy_without_disparate_impact_bounds_arms_nothing(monitored: Monitored, tmp_path):
    policies = tmp_path / "policies"
    policies.mkdir()
    for path in (REPO / "policies").iterdir():
        text = path.read_text()
        if path.name == "monitoring.cedar":
            text = text.replace('lessThan(decimal("0.8000"))', 'lessThan(decimal("1.8000"))')
        (policies / path.name).write_text(text)
    report, where, sha = sealed_report(monitored.services, monitored.model, 2, FAIRNESS_REPORT)
    with pytest.raises(GuardNotArmed, match="rule monitoring.disparate_impact gives no disparate-impact bounds"):
        arm(PolicyBundle.load(policies), monitored.model, 2, report, sha, where)


def test_the_guard_s_evidence_grows_with_harm_and_not_with_noise(monitored: Monitored):
    """The same armed guard: a group approved at a tenth of the reference's rate crosses 1/alpha within a few
    hundred decisions; one approved at 0.9 of it (inside the bounds) never does in a whole window."""
    armed, rng = _armed(monitored), np.random.default_rng(3)
    for ratio, contains in ((0.1, True), (0.9, False)):
        guard, crossed = FairnessGuard(armed), None
        for seq in range(1, armed.window_size + 1):
            group = "F" if seq % 2 else "M"
            rate = 0.5 * (ratio if group == "F" else 1.0)
            finding = guard.observe([Observation(seq, 2, bool(rng.random() < rate), {"sex": group})])
            if crossed is None and finding and finding.evidence >= 100:
                crossed = seq
        assert (crossed is not None) is contains, (ratio, crossed)
        if contains:
            assert crossed < 250


def test_at_the_bound_itself_the_evidence_keeps_its_promise():
    """The worst healthy case: a group approved at exactly 0.8 of its reference's rate. Looked at after every
    ten decisions of each of 300 windows, the raw evidence (no multiplicity adjustment) reaches 20 in at most
    1/20 of them, as Ville's inequality promises for the test martingale it is bounded by."""
    rng, alarms = np.random.default_rng(11), 0
    for _ in range(300):
        group, reference = Counts(Prior.centred(0.4)), Counts(Prior.centred(0.5))
        for _ in range(50):
            group.add(5, int(rng.binomial(5, 0.4)))
            reference.add(5, int(rng.binomial(5, 0.5)))
            if log_evidence_outside(group, reference, 0.8, 1.25)[0] >= math.log(20):
                alarms += 1
                break
    print(f"raw evidence reached 20 in {alarms} of 300 windows at the bound (promise: at most 15)")
    assert alarms <= 15


@pytest.mark.parametrize("banded", [False, True])
def test_the_watch_labels_each_logged_decision_as_the_card_labels_its_group(banded):
    """The watch remembers each distinct logged value's groups; they are what `protected_groups` gives the
    whole frame (bands cut, intersections joined), gaps included: a decision missing an attribute joins no
    group."""
    model = load_config(REPO / "governance.yaml").model("credit_scoring")
    if banded:  # age as a number, cut into bands
        attributes = [model.protected_attributes[0], ProtectedAttribute(column="age", bands=[18, 40, 60, 101])]
        model = model.model_copy(update={"protected_attributes": attributes})
    frame = generate_applications(2000, seed=7200)[model.protected_columns].astype(object)
    frame.iloc[::37, 0] = None
    logged = [json.dumps({k: v for k, v in row.items() if v is not None}) for row in frame.to_dict("records")]
    expected, missing = protected_groups(model, frame), frame.isna().any(axis=1)
    labels = _Groups(model)
    for i, text in enumerate(logged):
        assert labels.of(text) == ({} if missing[i] else {name: groups[i] for name, groups in expected.items()})
    assert len(labels._known) < len(logged) / 4  # remembered by distinct value


def test_the_guard_seals_every_decision_once_it_has_settled(monitored: Monitored, monkeypatch):
    monkeypatch.setattr(guard_watch, "SEAL_EVERY_SECONDS", 0.1)  # every minute in production
    monitored.send(seed=7000, rows=BATCH)
    watch = GuardWatch(monitored.settings)
    stop = threading.Event()
    running = threading.Thread(target=watch.run, args=(stop, 0.05))
    running.start()
    try:
        time.sleep(0.5)
        assert monitored.ledger(events.DecisionsSealed) == []  # just answered: not settled yet
        travel(monkeypatch, SETTLE + timedelta(seconds=1))
        deadline = time.monotonic() + 30
        while not monitored.ledger(events.DecisionsSealed) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        running.join()
    (sealed,) = monitored.ledger(events.DecisionsSealed)
    assert sealed.count == DecisionLog.for_settings(monitored.settings).count(MODEL) >= BATCH


def _stream(decisions: int, seed: int) -> list[Observation]:
    """Decisions of v2 (women approved at a fifth of men's rate from the middle on), a stretch in the safe state
    and one of v3, groups drawn across the card's and one it does not know, some without a group."""
    rng, observed = np.random.default_rng(seed), []
    for seq in range(1, decisions + 1):
        version = None if decisions // 3 < seq <= decisions // 3 + 40 else 3 if seq % 997 < 30 else 2
        sex = str(rng.choice(["F", "M", "X"], p=[0.45, 0.45, 0.1]))
        groups = {} if seq % 41 == 0 else {"sex": sex, "age_band": str(rng.choice(["18-39", "40-59", "60+"]))}
        rate = 0.1 if sex == "F" and seq > decisions // 2 else 0.5
        observed.append(Observation(seq, version, bool(rng.random() < rate), groups))
    return observed


def _armed_by_hand(window_size: int) -> Armed:
    rates = {"sex": {"M": 0.5, "F": 0.45}, "age_band": {"40-59": 0.5, "18-39": 0.4, "60+": 0.55}}
    return Armed(MODEL, 2, "high", "0" * 64, {"sex": "M", "age_band": "40-59"}, rates, 0.8, 1.25, window_size)


@pytest.mark.parametrize("window_size, judged", [(500, 100.0), (7, 0.1)])  # 7: tests restart every 3 decisions
def test_a_poll_s_decisions_judged_together_give_the_findings_of_one_decision_at_a_time(window_size, judged):
    """The watch feeds a poll's decisions at once; the guard counts them by runs. After every poll its finding
    is the one it gives when fed the same decisions one by one (tests started, ended and reset alike)."""
    stream, one_by_one = _stream(3000, seed=21), FairnessGuard(_armed_by_hand(window_size))
    together, strongest = FairnessGuard(_armed_by_hand(window_size)), 0.0
    for start in range(0, len(stream), 97):
        poll = stream[start : start + 97]
        for seen in poll:
            alone = one_by_one.observe([seen])
        by_poll = together.observe(poll)
        assert repr(by_poll) == repr(alone), start
        strongest = max(strongest, by_poll.evidence if by_poll else 0.0)
    assert strongest >= judged  # the harm was judged, not only the noise


def test_a_poll_s_work_on_the_group_counts_does_not_grow_with_its_decisions(monkeypatch):
    """Per poll the guard adds each run's tally to each live test's group counts: a few additions per group,
    not one per decision and test (before: 4 per decision here)."""
    added = []
    monkeypatch.setattr(Counts, "add", lambda self, n, s: added.append((n, s)))
    armed, stream = _armed_by_hand(500), [o for o in _stream(2000, seed=22) if o.version == 2]
    guard = FairnessGuard(armed)
    for start in range(0, len(stream), 100):
        guard.observe(stream[start : start + 100])
    polls, groups = math.ceil(len(stream) / 100), sum(len(g) for g in armed.card_rates.values())
    assert sum(n for n, _ in added) > len(stream)  # every decision counted, in each of its tests and groups
    # at most three runs a poll (a test starting, one ending), two live tests
    assert len(added) <= polls * 3 * 2 * groups, f"{len(added)} additions for {len(stream)} decisions"
