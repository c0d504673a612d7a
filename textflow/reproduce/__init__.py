"""``python -m textflow.reproduce``: the findings of arXiv 2606.30705 measured by textflow, in one report.

The entry point trains the models the paper's claims need (the quickstart text model, the
``diag_tube`` text model, the smooth image control, the bottlenecked AR decoder, a distilled
student), runs the sampler sweep and the readout diagnostics, and writes ``report.md`` with every
claim beside textflow's value, a verdict and the commands behind it (docs/reproduce.md).

- :mod:`textflow.reproduce.budgets`: what each stage trains and samples at ``--budget fast`` / ``full``;
- :mod:`textflow.reproduce.stages`: the plan, one command per stage, each with its finished-marker;
- :mod:`textflow.reproduce.runner`: runs the plan, skipping finished stages (resume);
- :mod:`textflow.reproduce.claims`: reads the outputs into claims with verdicts;
- :mod:`textflow.reproduce.report`: writes the report.
"""

from textflow.reproduce.budgets import BUDGETS, Budget
from textflow.reproduce.stages import Stage, plan

__all__ = ["BUDGETS", "Budget", "Stage", "plan"]
