"""Production monitoring of governed models (Dagster-free; the sensors and assets are thin wiring around it).

- `windows`: windows of a model's decisions in the decision log, and the sensors' cursors;
- `reference`: what a version's decisions are compared with (its held-out training rows,
  their scores, and the approved model card's figures);
- `drift`, `decision_rates`, `fairness`, `performance`: the measurements of one window;
- `policy`: the Cedar judgement of a window (policies/monitoring.cedar): retrain, contain, and how;
- `monitor`: judging windows for the sensors (`scan`) and for the reports;
- `report`: the monitoring report of an alert (figures and the Evidently HTML);
- `remediation`: acting on a judgement (rollback, kill switch, retraining request), one at a time per model;
- `labels`: joining real outcomes to logged decisions (`govern labels import`);
- `traffic`: deciding generated applications through the serving code path (demo, tests, bench).
"""
