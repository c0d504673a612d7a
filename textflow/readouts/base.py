"""The readout-kind interface: what a latent space's readout is, and everything in textflow that
depends on it (docs/autoencoders.md, docs/diagnostics.md).

The paper (arXiv 2606.30705) contrasts readouts, not architectures: a sharp categorical
readout that decodes every position at once, a readout that commits tokens one at a time and feeds
them back, and a smooth continuous decoder (the image control). Every autoencoder names its kind in
its ``readout_kind`` class attribute (a two-stage wrapper delegates to the autoencoder it wraps), and
the rest of textflow asks the kind instead of testing the autoencoder's class or flags:

* :meth:`ReadoutKind.decode`: a generation's final latents -> its outputs (token ids or images);
* :meth:`ReadoutKind.monitor` (training callback) and :meth:`ReadoutKind.diagnose` (the one-command
  report): the diagnostics the readout supports, as a typed :class:`DiagnosticsResult`;
* :meth:`ReadoutKind.heldout`: the held-out data the report measures on;
* :meth:`ReadoutKind.trajectory_recorder` and :meth:`ReadoutKind.report_samples`: what a sampling
  run records, computes, writes and prints (:mod:`textflow.sampling`);
* :meth:`ReadoutKind.cci_readout`: the readout's structural categorical commitment index;
* :meth:`ReadoutKind.set_feed`: ``sample.py readout_feed=`` (the commit ablation), refused by kinds
  that have nothing to feed back.

A new kind is one subclass of :class:`ReadoutKind` (and, for its diagnostics, one subclass of
:class:`DiagnosticsResult`); nothing else in textflow changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar, Optional, Sequence

from torch import Tensor

from textflow.errors import ConfigError

if TYPE_CHECKING:  # annotations only: the sampling package imports the autoencoders, which import the kinds
    from textflow.sampling.generate import Generation
    from textflow.readouts.sample_report import SampleReport
    from textflow.sampling.setup import SamplingRun

STEPS = (4, 8, 16)  # the default K of the diagnostics (the training callback's and the report's)
# The training callback's lighter DABI (docs/diagnostics.md, "Where they run"): 3 perturbation scales and
# 4 isotropic draws per scale, against the full grid (F_GRID, 8 draws) of the diagnostics command.
MONITOR_DABI_F = (0.5, 1.0, 2.0)
MONITOR_DABI_DRAWS = 4


class DiagnosticsResult(ABC):
    """A readout kind's diagnostics, typed. ``checkpoint`` is set by the one-command report.

    ``as_dict()`` is the JSON written to ``diagnostics.json`` (keys as docs/diagnostics.md lists them),
    ``scalars()`` the ``diag/...`` values a dashboard logs, ``figures()`` the PNGs, ``markdown()`` the
    human-readable report.
    """

    checkpoint: Optional[str]

    @abstractmethod
    def as_dict(self) -> dict:
        """JSON-ready values (``checkpoint`` first when set)."""

    @abstractmethod
    def scalars(self) -> dict[str, float]:
        """``diag/<name>`` -> value, for Lightning loggers."""

    @abstractmethod
    def markdown(self) -> str:
        """The report as markdown (``diagnostics.md``)."""

    def figures(self, out_dir: Path, *, prefix: str = "", loggers=(), step: int = 0) -> list[Path]:
        """PNG figures in ``out_dir`` (also sent to image-taking ``loggers``); none by default."""
        return []

    def _keyed(self, body: dict) -> dict:
        return {"checkpoint": self.checkpoint, **body} if self.checkpoint is not None else body


class ReadoutKind(ABC):
    """One kind of readout. Kinds hold no state: every method takes the denoiser or autoencoder it acts
    on (a :class:`textflow.autoencoders.NormalizedAutoencoder` included; ``autoencoder.unwrap()`` is the
    autoencoder that decodes, ``autoencoder.to_unwrapped(latents)`` its latents).

    ``name`` labels the kind; ``decodes_tokens`` says whether ``decode`` gives token ids, which a
    tokenizer turns into text (the text-only training callbacks ask it).
    """

    name: ClassVar[str]
    decodes_tokens: ClassVar[bool]

    @abstractmethod
    def decode(self, denoiser, latents: Tensor) -> Tensor:
        """The outputs of final latents (B, L, D): token ids (B, L), or a reconstruction."""

    @abstractmethod
    def diagnose(self, denoiser, data: Tensor, *, steps: Sequence[int] = STEPS, seed: int = 0) -> DiagnosticsResult:
        """Every diagnostic of this readout on held-out ``data`` (the one-command report)."""

    @abstractmethod
    def monitor(self, denoiser, data: Tensor, *, steps: Sequence[int] = STEPS, seed: int = 0, flip: bool = True,
                dabi: bool = True, ablation: bool = True, dabi_f: Sequence[float] = MONITOR_DABI_F,
                dabi_draws: int = MONITOR_DABI_DRAWS) -> Optional[DiagnosticsResult]:
        """What the training callback measures on held-out ``data``; ``flip``, ``dabi`` and ``ablation``
        switch parts off (the callback's options); DABI runs on the scales ``dabi_f`` with ``dabi_draws``
        isotropic directions per scale. ``None`` when nothing is left to measure."""

    @abstractmethod
    def heldout(self, loaded, *, blocks: int) -> Tensor:
        """``blocks`` held-out examples of a loaded run's own data (:class:`textflow.checkpoint.LoadedRun`)."""

    @abstractmethod
    def report_samples(self, run: "SamplingRun", generation: "Generation",
                       recorder: Optional[Callable] = None) -> "SampleReport":
        """A sampling run's metrics, files, logged tables, figures and printout (``recorder`` is what
        :meth:`trajectory_recorder` gave, if anything)."""

    def trajectory_recorder(self, path) -> Optional[Callable]:
        """A sampler callback recording the run's own trajectory (sample.py ``diagnostics=true``); none
        by default."""
        return None

    def cci_readout(self, autoencoder, length: int) -> float:
        """The structural CCI of the readout (docs/diagnostics.md): the fraction of ``length`` decisions
        committed before the final one. A readout that commits nothing: 0."""
        return 0.0

    def set_feed(self, autoencoder, feed: str) -> None:
        """``readout_feed=``: what a committing readout feeds back. Only the autoregressive kind has a feed."""
        raise ConfigError(f"readout_feed={feed!r} needs an autoregressive readout (autoencoder=ar); this "
                          f"checkpoint's autoencoder is {type(autoencoder.unwrap()).__name__}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
