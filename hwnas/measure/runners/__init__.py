"""Runners: where a model runs (this host, a phone over adb, a board's agent), the model worker and energy
sensors."""
