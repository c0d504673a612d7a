"""``python -m textflow.diagnostics CKPT [--steps 4 8 16] [--blocks 64] [--out DIR]``."""

from textflow.cli import guarded
from textflow.diagnostics.cli import main

if __name__ == "__main__":
    guarded(main, None)  # a bad checkpoint or value: one line, exit status 2
