"""The scoring API (`govern serve`, `governance.serving.app.create_app`): decisions from each governed model's
approved champion. Nothing is imported here, so a command that needs only tokens or limits does not load the model
stack."""
