"""Lightning callbacks (diagnostics and sample logging live here, never in the LightningModule)."""

from textflow.callbacks.diagnostics import ReadoutDiagnostics
from textflow.callbacks.per_k import PerKValidation
from textflow.callbacks.samples import SampleTextLogger

__all__ = ["PerKValidation", "ReadoutDiagnostics", "SampleTextLogger"]
