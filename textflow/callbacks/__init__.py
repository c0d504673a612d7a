"""Lightning callbacks (diagnostics and sample logging live here, never in the LightningModule)."""

from textflow.callbacks.samples import SampleTextLogger

__all__ = ["SampleTextLogger"]
