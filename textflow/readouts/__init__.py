"""Readout kinds (arXiv 2606.30705; docs/autoencoders.md, docs/diagnostics.md): how a latent
space's readout decodes, what it is diagnosed with, how its samples are reported and its structural CCI.

``ParallelReadout`` (``embed``, ``vae``, ``frozen_embed``: every position at once), ``AutoregressiveReadout``
(``ar``: commits token by token) and ``ContinuousReadout`` (``smooth``: the image control), on the
interface of :class:`textflow.readouts.base.ReadoutKind`. An autoencoder names its kind in its
``readout_kind`` class attribute.
"""

from textflow.readouts.autoregressive import AutoregressiveDiagnostics, AutoregressiveReadout
from textflow.readouts.base import DiagnosticsResult, ReadoutKind
from textflow.readouts.continuous import ContinuousDiagnostics, ContinuousReadout
from textflow.readouts.parallel import ParallelDiagnostics, ParallelReadout
from textflow.readouts.text import TextReadout

__all__ = ["AutoregressiveDiagnostics", "AutoregressiveReadout", "ContinuousDiagnostics", "ContinuousReadout",
           "DiagnosticsResult", "ParallelDiagnostics", "ParallelReadout", "ReadoutKind", "TextReadout"]
