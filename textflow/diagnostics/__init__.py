"""Readout diagnostics of arXiv 2606.30705 (science.md §4): DABI, CCI, the commit ablation, oracle
roll-in flip rate, tube law and row-space fraction, as pure functions (no Lightning)."""

from textflow.diagnostics.ablation import commit_ablation
from textflow.diagnostics.boundary import boundary_geometry
from textflow.diagnostics.cci import cci_from_commits, cci_readout
from textflow.diagnostics.dabi import dabi_curve, mse_dabi_curve
from textflow.diagnostics.rollin import oracle_flip_rate, terminal_residual, terminal_time
from textflow.diagnostics.tube import tube_law

__all__ = ["boundary_geometry", "cci_from_commits", "cci_readout", "commit_ablation", "dabi_curve", "mse_dabi_curve",
           "oracle_flip_rate", "terminal_residual", "terminal_time", "tube_law"]
