"""The attack suite (issue 20): each insider attack as a regression test against a real state dir, on SQLite and
on PostgreSQL.

The insider can write the governance and decision-log databases, the state dir and the MLflow store, and can use
the Dagster UI (which has no login) without any key. Every attack runs on its own copy of the lineage world
(tests/lineage/world.py: v1 and v2 trained, gated, approved by ravi and rhea and deployed through the real graph,
decisions served by the real scoring API, paul's signed rollback to v1, bea's kill switch on and off), or of that
world with two candidates awaiting approval (v3, requested by dana with a signed request; v4, launched as from the
UI with only a run tag naming paul), each built once per backend for the session (conftest.py). Each test asserts
the safe outcome (the last verified champion served, or `refer`; nothing deployed) and the detection (the incident
or refusal in the ledger, a non-zero `govern status`, `lineage`, `trace`, `ledger verify` or `decisions verify`).
An attack that still succeeds is a strict xfail naming what happens: it fails the suite the day it is fixed, so
the mark is removed with the fix.

Attack -> test (module: test function)

Issue 20's four paths
  1. forged `started` deployment row + alias moved, then recovery
                                 test_production_moves: test_a_forged_deployment_row_and_alias_are_not_completed_...,
                                 test_a_forged_deployment_row_for_a_version_nobody_approved_is_not_completed
  2. MLflow alias moved by hand  test_production_moves: test_a_hand_moved_alias_is_ignored_by_the_scoring_api_...
  3. candidate launched without the requester tag / signed request (separation of duties)
                                 test_separation_of_duties: test_an_approver_launching_without_a_request_cannot_be_...,
                                 test_a_run_tag_names_no_requester_and_a_signed_one_stays,
                                 test_a_forged_request_entry_names_nobody,
                                 test_a_request_cedar_refused_names_nobody_when_a_ledger_writer_appends_it
  4. kill-switch row edited      test_kill_switch: test_an_edited_kill_switch_row_lifts_nothing,
                                 test_a_kill_switch_row_edited_off_under_a_running_api_keeps_every_answer_refer,
                                 test_an_edited_kill_switch_row_is_reported_by_lineage_and_trace

Refused before the suite existed
  key not in roster, forged signature, wrong role, self-approval
                                 test_statements: test_approvals_refused_at_signing,
                                 test_refused_statements_give_a_reason_leave_a_ledger_entry_and_record_nothing
  forged statement row           test_statements: test_a_forged_statement_written_straight_into_the_store_...
  no approval / reported materialization (Dagster UI)
                                 test_statements: test_no_approval_deploys_nothing,
                                 test_a_reported_materialization_of_approved_release_deploys_nothing
  replayed statement             test_statements: test_a_replayed_statement_is_refused_and_ledgered,
                                 test_a_new_statement_reusing_a_nonce_is_refused,
                                 test_a_recorded_approval_submitted_again_is_a_replay_refused_and_ledgered,
                                 test_an_approval_of_another_version_replayed_deploys_nothing;
                                 test_production_moves: test_a_replayed_approval_does_not_bring_back_a_version_...,
                                 test_a_replayed_approval_under_a_new_deployment_id_is_refused;
                                 test_kill_switch: test_a_replayed_enable_does_not_lift_a_later_disable
  appended, re-hashed approval and deployment entries; a statement Cedar refused cited as authority
                                 test_production_moves: test_appended_rehashed_forgeries_of_an_approval_and_a_...,
                                 test_a_statement_cedar_refused_authorises_nothing
  edited evidence pack           test_artifacts: test_an_evidence_pack_edited_after_its_approval_deploys_nothing,
                                 test_a_changed_sealed_file_is_a_finding_and_no_pack_is_exported
  swapped model artifact         test_artifacts: test_a_model_artifact_swapped_after_its_approval_deploys_nothing,
                                 test_an_artifact_changed_after_its_governed_deployment_is_not_served
  MLflow tags rewritten          test_artifacts: test_rewritten_mlflow_tags_change_nothing_in_status_or_serving
  rollback to an unapproved version
                                 test_production_moves: test_a_rollback_to_a_version_nobody_approved_is_refused_...
  rollback statement left unused by a failed rollback, completed after a person's later move
                                 test_production_moves: test_a_rollback_statement_left_unused_does_not_undo_a_...,
                                 test_a_failed_rollback_revived_in_its_rows_and_alias_is_not_completed_by_recovery
  deployment rows edited         test_production_moves: test_trace_takes_the_move_in_force_from_the_signed_record_...,
                                 test_lineage_takes_champion_periods_and_status_from_the_ledger_not_the_rows,
                                 test_completed_deployment_rows_edited_by_hand_are_reported
  wrong principal for enable; forged or reasonless enable
                                 test_kill_switch: test_an_enable_by_a_principal_the_policy_does_not_let_lift_it_...,
                                 test_an_enable_signed_with_another_principals_key_is_refused_and_ledgered,
                                 test_the_kill_switch_is_not_lifted_without_a_reason
  waiver abuse                   test_waivers: every test (wrong role, self-waiver, too long, unwaivable rule,
                                 forged signature, other version or rule, grantor demoted, rule made unwaivable,
                                 Cedar-refused waiver, forged `waiver.granted` entry)
  request by someone who may not train, or with another's key
                                 test_separation_of_duties: test_only_who_may_train_can_sign_a_request,
                                 test_a_request_cedar_refused_is_ledgered_as_a_refusal
  API token rows inserted, un-revoked or rewritten
                                 test_api_tokens: test_a_token_row_the_ledger_does_not_back_opens_nothing_and_...,
                                 test_a_rewritten_secret_digest_is_refused
  forged gate entry              test_separation_of_duties: test_a_forged_gate_entry_does_not_change_who_may_approve,
                                 test_a_forged_gate_entry_is_reported (XFAIL)
  ledger edits of every kind (update, delete, insert, reorder, re-hash), Merkle nodes
                                 test_ledger_edits: the 600-entry ledger tests (one changed byte in each column,
                                 deleted, moved, swapped entries, changed nodes), verified in one process and two;
                                 on the world's ledger: test_an_edited_entry_of_a_real_ledger_is_named_by_ledger_...,
                                 test_a_deleted_rollback_entry_does_not_bring_back_the_rolled_back_version,
                                 test_a_rewritten_ledger_entry_is_a_finding_of_lineage_and_trace,
                                 test_a_redefined_query_column_hiding_the_rollback_is_refused_and_named,
                                 test_a_tampered_ledger_is_named_on_every_console_page_that_reads_it,
                                 test_a_tampered_rollback_leaves_no_all_clear_on_the_inventory_or_the_...,
                                 test_status_on_a_tampered_rollback_names_it_as_an_incident_and_exits_1,
                                 test_an_approval_entry_rehashed_to_name_another_approver_is_a_finding_...
  truncation and rewrite after a checkpoint
                                 test_ledger_edits: test_a_clean_truncation_is_found_only_with_a_checkpoint,
                                 test_a_history_rewritten_consistently_after_a_checkpoint_is_detected,
                                 test_a_history_rewritten_from_the_first_entry_is_detected,
                                 test_a_real_ledger_truncated_after_a_checkpoint_is_detected,
                                 test_a_real_ledger_rehashed_consistently_after_a_checkpoint_is_detected,
                                 test_a_real_ledger_truncated_to_before_a_rollback_does_not_bring_back_...
  forged retention, NULLed payloads
                                 test_ledger_edits: test_a_payload_removed_outside_retention_is_named,
                                 test_a_payload_removed_outside_retention_fails_verification,
                                 test_a_forged_retention_run_does_not_explain_fresh_payloads_away,
                                 test_changes_to_an_entry_whose_payload_expired_are_named (and the control:
                                 test_the_same_expiry_by_a_retention_run_a_day_later_verifies)
  decision log rows deleted, edited, inserted, moved; forged seals, retention runs, sealing lease
                                 test_decision_log: every test
  an allowance forged over the gate's denial, sealed in a pack of the version's own reports
                                 test_forged_gate: every test
  a later approval request naming another pack for a deployed version; config thresholds moved
                                 test_artifacts: test_a_later_request_naming_another_pack_does_not_change_...,
                                 test_decision_thresholds_changed_in_the_config_after_approval_serve_nothing
  a registration appended while an expired request was still valid
                                 test_separation_of_duties: test_an_expired_request_authorises_no_later_run

Related tests that stay where they are: an exported evidence archive changed by its holder
(tests/lineage/test_evidence.py), the ledger's generated query columns and backend tampering smoke test
(tests/ledger/test_ledger_store.py), an altered ledger entry not stopping a rollback
(tests/test_rollback_targets.py), the statement store's re-verification against a changed roster
(tests/trust/test_statement_store.py).
"""
