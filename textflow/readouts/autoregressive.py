"""The committing readout: a latent-conditioned autoregressive decoder (``ar``) that decides one token
at a time and feeds it back (arXiv 2606.30705; docs/diagnostics.md, "The AR decoder: CCI and
the commit ablation").

Its structural CCI is (L - 1) / L while it feeds back committed tokens and 0 under the commit ablation
(``readout_feed=soft``: expected embeddings fed back). Its diagnostics are the CCI and the commit
ablation, greedy decodes with committed tokens vs expected embeddings fed back, on clean latents and on
the oracle roll-in ``x_hat`` at each K's terminal time; DABI and the flip rates are not run (one decode
is L network calls).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import Tensor

from textflow.diagnostics.ablation import DecodeStats, commit_ablation
from textflow.diagnostics.cci import cci_autoregressive
from textflow.diagnostics.rollin import terminal_residual, terminal_time
from textflow.errors import check_choice
from textflow.noise import stream_generator
from textflow.readouts.base import STEPS, DiagnosticsResult
from textflow.readouts.text import TextReadout

FEEDS = ("token", "soft")


@dataclass
class AutoregressiveDiagnostics(DiagnosticsResult):
    blocks: int
    seq_len: int
    latent_dim: int
    cci_readout: float
    ablation: dict[str, dict[str, DecodeStats]]  # latents ("clean", "K<k>") -> feed -> decode statistics
    checkpoint: Optional[str] = None

    def as_dict(self) -> dict:
        return self._keyed({"autoregressive": True, "blocks": self.blocks, "seq_len": self.seq_len,
                            "latent_dim": self.latent_dim, "cci_readout": self.cci_readout,
                            "ablation": {name: {feed: st.as_dict() for feed, st in row.items()}
                                         for name, row in self.ablation.items()}})

    def scalars(self) -> dict[str, float]:
        """``diag/cci_readout`` and ``diag/ablation_<latents>_<feed>_acc``."""
        return {"diag/cci_readout": self.cci_readout,
                **{f"diag/ablation_{name}_{feed}_acc": st.token_acc
                   for name, row in self.ablation.items() for feed, st in row.items()}}

    def markdown(self) -> str:
        lines = [f"# Diagnostics of `{self.checkpoint}` (autoregressive decoder)", "",
                 f"{self.blocks} held-out blocks of {self.seq_len} tokens; latent d = {self.latent_dim}; "
                 f"structural CCI of the readout {self.cci_readout:.4f}.", "",
                 "Commit ablation (greedy decodes; `token` feeds back the committed token, `soft` the expected "
                 "embedding; K rows decode the oracle roll-in x̂ at that K's terminal time):", "",
                 "| latents | feed | token accuracy | mean confidence | unigram entropy | distinct-1 | "
                 "adjacent repeats |",
                 "|---|---|---|---|---|---|---|"]
        for name, row in self.ablation.items():
            for feed, st in row.items():
                lines.append(f"| {name} | {feed} | {st.token_acc:.4f} | {st.mean_confidence:.3f} | "
                             f"{st.unigram_entropy:.3f} | {st.distinct_1:.3f} | {st.adjacent_repeat:.3f} |")
        return "\n".join(lines) + "\n"


class AutoregressiveReadout(TextReadout):
    """Commits token by token; ``feed`` (on the decoder) says what it feeds back: ``token`` or ``soft``."""

    name = "autoregressive"

    def decode(self, denoiser, latents: Tensor) -> Tensor:
        """One greedy decode of the whole batch: its cost is L sequential decoder calls, so it is not
        split into chunks of rows as a parallel readout's logits are (:meth:`TextReadout.decode`)."""
        return denoiser.readout(latents).argmax(-1)

    def cci_readout(self, autoencoder, length: int) -> float:
        """(L - 1) / L while committed tokens are fed back; 0 under the commit ablation."""
        return cci_autoregressive(length) if autoencoder.unwrap().feed == "token" else 0.0

    def set_feed(self, autoencoder, feed: str) -> None:
        """``readout_feed=soft`` is the commit ablation of a trained decoder (``token`` undoes it)."""
        check_choice("readout_feed", feed, FEEDS)
        autoencoder.unwrap().feed = feed

    def commit_ablation(self, autoencoder, latents: Tensor, reference: Tensor) -> dict[str, DecodeStats]:
        """:func:`textflow.diagnostics.ablation.commit_ablation` on the decoder itself; a two-stage
        flow's standardised latents are mapped back to the decoder's first."""
        return commit_ablation(autoencoder.unwrap(), autoencoder.to_unwrapped(latents), reference)

    @torch.no_grad()
    def diagnose(self, denoiser, data, *, steps: Sequence[int] = STEPS, seed: int = 0) -> AutoregressiveDiagnostics:
        """CCI and the commit ablation on clean latents and at each K's terminal time."""
        x = denoiser.embed(data)
        autoencoder = denoiser.autoencoder
        cci = self.cci_readout(autoencoder, data.shape[1])
        inputs = {"clean": x}
        for k in steps:
            noise = stream_generator(seed, "diagnostics/terminal")
            inputs[f"K{k}"] = x + terminal_residual(denoiser, x, terminal_time(k), generator=noise)
        return AutoregressiveDiagnostics(blocks=len(data), seq_len=data.shape[1], latent_dim=x.shape[-1],
                                         cci_readout=cci,
                                         ablation={name: self.commit_ablation(autoencoder, latents, data)
                                                   for name, latents in inputs.items()})

    def monitor(self, denoiser, data, *, steps=STEPS, seed=0, flip=True, dabi=True, ablation=True,
                dabi_f=(), dabi_draws=0) -> Optional[AutoregressiveDiagnostics]:
        """The commit ablation at ``steps[0]`` only (each decode is L network calls); None without ``ablation``."""
        if not ablation:
            return None
        return self.diagnose(denoiser, data, steps=tuple(steps)[:1], seed=seed)
