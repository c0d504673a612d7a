"""Run folders: locking, resuming, writing a run's outputs."""
