"""Run folders: one live run per folder (lock) and a run's outputs written as one unit."""
