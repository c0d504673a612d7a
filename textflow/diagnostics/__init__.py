"""Readout diagnostics of arXiv 2606.30705 (docs/diagnostics.md): DABI, CCI, the commit ablation,
oracle roll-in flip rate, tube law and row-space fraction, as pure functions (no Lightning). Which of them
a readout gets, and how they are reported, is its kind's business (:mod:`textflow.readouts`)."""

from textflow.diagnostics.ablation import commit_ablation
from textflow.diagnostics.boundary import boundary_geometry
from textflow.diagnostics.cci import cci_from_commits
from textflow.diagnostics.dabi import F_GRID, dabi_curve, mse_dabi_curve
from textflow.diagnostics.rollin import oracle_flip_rate, terminal_residual, terminal_time
from textflow.diagnostics.tube import tube_law

__all__ = ["F_GRID", "boundary_geometry", "cci_from_commits", "commit_ablation", "dabi_curve", "mse_dabi_curve",
           "oracle_flip_rate", "terminal_residual", "terminal_time", "tube_law"]
