"""Sensors for every governed model: one per concern, whatever the number of models (governance.fleet)."""
