"""Readout diagnostics during training (docs/diagnostics.md, "Where they run"): what the model's readout
kind monitors (:meth:`textflow.readouts.ReadoutKind.monitor`) on held-out data, from the EMA weights,
every N validation runs."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from textflow.checks import require_int, require_number
from textflow.errors import ConfigError
from textflow.readouts.base import MONITOR_DABI_DRAWS, MONITOR_DABI_F


class ReadoutDiagnostics(L.Callback):
    """Every ``every_n_validations`` validation runs (0 = off), on the first ``blocks`` held-out
    blocks, log through ``pl_module.log`` the ``scalars()`` of what the readout kind monitors; for a
    parallel text readout:

    ``diag/clean_readout_acc``, ``diag/clean_readout_ce``, ``diag/p_m0`` (tube-law density);
    with ``flip``: ``diag/flip_K{K}``, ``diag/tube_pred_K{K}`` (linear tube law) and
    ``diag/tube_tail_K{K}`` (margin-tail prediction) for each K in ``steps``;
    with ``dabi``: ``diag/dabi_{residual|boundary}_{flip|ce}_f1`` (f = 1, at the ``steps[0]``
    terminal residual; the curve runs over the scales ``dabi_f`` with ``dabi_draws`` isotropic draws
    each, lighter than the diagnostics command's full grid: docs/diagnostics.md), ``diag/alignment_cos2``, ``diag/isotropic_cos2``, ``diag/row_space_residual``
    and ``diag/row_space_isotropic``.
    Figures (``diag/dabi_vs_f``, ``diag/flip_vs_s``) go to TensorBoard / wandb and to
    ``<run>/diagnostics/step<N>_*.png``. For a continuous decoder (the smooth control) it logs
    ``diag/clean_recon_mse`` and ``diag/dabi_residual_mse_K{K}_f1`` (DABI with the MSE response).
    For an AR readout (one decode is L network calls, so no DABI) and ``ablation``: ``diag/cci_readout``
    and the commit ablation's ``diag/ablation_{clean|K<steps[0]>}_{token|soft}_acc``.
    """

    def __init__(self, *, every_n_validations: int = 1, blocks: int = 16, steps: list[int] = (4, 8, 16),
                 flip: bool = True, dabi: bool = True, ablation: bool = True, figures: bool = True, seed: int = 0,
                 dabi_f: list[float] = MONITOR_DABI_F, dabi_draws: int = MONITOR_DABI_DRAWS):
        self.every_n_validations, self.blocks, self.ablation = int(every_n_validations), int(blocks), ablation
        self.dabi_f = tuple(require_number("callbacks.diagnostics.dabi_f", f, low=0, low_open=True) for f in dabi_f)
        if dabi and not self.dabi_f:
            raise ConfigError("callbacks.diagnostics.dabi_f is empty; give at least one perturbation scale, "
                              "e.g. [0.5, 1.0, 2.0], or set callbacks.diagnostics.dabi=false")
        self.dabi_draws = require_int("callbacks.diagnostics.dabi_draws", dabi_draws, low=1)
        self.steps, self.flip, self.dabi, self.figures, self.seed = tuple(steps), flip, dabi, figures, seed
        self._validations = 0
        self._ids: torch.Tensor | None = None

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self._ids is None or len(self._ids) < self.blocks:  # keep the first held-out blocks, once
            self._ids = batch[: self.blocks] if self._ids is None else torch.cat([self._ids, batch])[: self.blocks]

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        if trainer.sanity_checking or self.every_n_validations <= 0 or self._ids is None:
            return
        if not hasattr(pl_module, "denoiser"):  # stage=autoencoder: no flow to diagnose
            return
        self._validations += 1
        if self._validations % self.every_n_validations:
            return
        den = pl_module.denoiser(use_ema=True)
        result = den.autoencoder.readout_kind.monitor(den, self._ids.to(pl_module.device), steps=self.steps,
                                                      seed=self.seed, flip=self.flip, dabi=self.dabi,
                                                      ablation=self.ablation, dabi_f=self.dabi_f,
                                                      dabi_draws=self.dabi_draws)
        if result is None:  # everything this readout measures is switched off
            return
        for key, value in result.scalars().items():
            pl_module.log(key, float(value), on_epoch=True, batch_size=len(self._ids))
        if self.figures and trainer.is_global_zero:
            out = Path(trainer.default_root_dir) / "diagnostics"
            result.figures(out, prefix=f"step{trainer.global_step:07d}_", loggers=trainer.loggers,
                           step=trainer.global_step)
