"""The audit and operations console: server-rendered pages over the governance stores, read-only.

Mounted on the scoring API under `/console` (`governance.serving.app`). Every page is a GET that reads:
the inventory (each model's verified champion and kill switch, pending approvals, open incidents, last
monitoring verdict), a version's lineage with every check, a decision's trace, the ledger (browse, verify,
inclusion proofs), the sealed model card and reports, Evidently's HTML, and an evidence pack download.
Actions are never taken here: where one is due, the page shows the signed `govern` command to run on the
machine that holds the person's key.
"""
