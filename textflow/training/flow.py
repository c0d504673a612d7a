"""Stage ``flow`` (``train.py stage=flow``, the default): ``LatentFlowModule``, the LightningModule that
trains a flow (or diffusion) backbone jointly with its latent autoencoder, and :func:`flow_stage`, the
builder conf/stage/flow.yaml names. The module holds the loss and the EMA copy; the optimizer, the
checkpoint's run info and the per-step seeding come from :class:`~textflow.training.base.TrainingModule`;
sampling lives in ``textflow.samplers``, diagnostics in callbacks.

Loss (arXiv 2606.30705; docs/architecture.md, "Data flow"): with clean latents ``x = encode(ids)``,
``t ~ train_time``, ``z_t = path.sample(x, t, eps)``,

    L = || f(z_t, t) - target ||^2  +  readout_weight * L_autoencoder(ids)

where the clean target is detached (stop-gradient, so the flow loss cannot shrink the embeddings and
collapse the latent space) and ``L_autoencoder`` is the autoencoder's own loss (readout cross-entropy
on lightly noised latents for the embedding autoencoder). In two-stage runs (``autoencoder_ckpt=``,
docs/autoencoders.md, "Two-stage training") the autoencoder is a frozen
:class:`~textflow.autoencoders.normalized.NormalizedAutoencoder` whose loss is zero; its latent
statistics are fitted on the training data when fitting starts. The squared error (and the conversion of
a self-conditioning pass to ``x_prev``) is the autoencoder's prediction head's
(:mod:`textflow.autoencoders.prediction`): the one-hot latent space trains the token cross-entropy of a
softmax over the vocabulary instead (FLM, arXiv 2602.16813).

Self-conditioning (``module.self_cond_prob = p > 0`` with ``backbone.self_condition=true``; ELF's
recipe, p = 0.5; docs/samplers.md, "Self-conditioning and SC-CFG"): the backbone reads ``[z_t, x_prev]``.
Per training step one coin, drawn from the step's seeded stream after the flow noise, decides: with
probability p a first forward pass without gradient gives ``x_prev = path.to_x_hat(f(z_t, t, 0))`` for
the second, trained pass ``f(z_t, t, x_prev)``; otherwise ``x_prev = 0``. The validation flow loss uses
``x_prev = 0`` (one pass, the same low-variance number for every run). ``p > 0`` needs a
self-conditioned backbone, and a self-conditioned backbone needs ``p > 0``: with p = 0 the
``x_prev`` half of its input projection would never be trained, yet sampling would feed it; both are
refused in one line. With p = 0 no coin is drawn, so plain runs are unchanged.

ELF's other training variants (docs/training.md, "Objectives"; the losses live in
:mod:`textflow.objectives`): scale tokens (``backbone.scale_tokens > 0``) draw one SC-CFG scale per
example and learn the guided estimate; conditioning (``condition@module.condition=masks``) gives random
prefixes or spans clean, with condition dropout (docs/conditioning.md); the decoder objective
(``module.decoder_prob = q > 0``) makes a step, with probability q, a readout cross-entropy step on
logit-normal-noised latents instead of a flow step. Each draws only when it is on, after the draws above,
so runs without it are unchanged.

Every training step draws its randomness (times, noise, the autoencoder's loss noise) from a stream
seeded by (run seed, step) (:class:`~textflow.training.rng.SeededTrainingSteps`), and the EMA is updated
inside the optimizer step, so a resumed run trains exactly as an uninterrupted one (docs/reliability.md).
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import Tensor, nn
from torch.utils.data import DataLoader

from textflow.autoencoders.base import LatentAutoencoder
from textflow.autoencoders.normalized import NormalizedAutoencoder
from textflow.autoencoders.prediction import prediction_of
from textflow.checks import require_number
from textflow.checkpoint import build_module, make_run_info
from textflow.conditioning import ConditionMasks
from textflow.denoiser import FlowDenoiser
from textflow.errors import ConfigError
from textflow.noise import stream_generator
from textflow.objectives import decoder_loss, flow_matching_loss, sample_guidance_scales
from textflow.paths import ProbPath
from textflow.time.grids import LogitNormalTime, UniformTime, fit_time
from textflow.training.autoencoder import read_autoencoder
from textflow.training.base import StageKeys, TrainingModule, tokenizer_vocabulary
from textflow.training.ema import EMA
from textflow.types import dense

NORMALIZED = "textflow.autoencoders.NormalizedAutoencoder"


class LatentFlowModule(TrainingModule):
    """Args:
    autoencoder, backbone, path: the components (built by train.py from their config groups).
    optimizer: ``_partial_`` optimizer factory taking ``params``.
    scheduler: optional ``_partial_`` LR-scheduler factory taking the optimizer (stepped per step).
    train_time: distribution of training times (``textflow.time.grids``).
    readout_weight: weight of the autoencoder loss.
    ema_decay: EMA decay of the weights used for validation and sampling.
    val_times: fixed times at which the validation flow loss is measured (low-variance curves); None: the
        training-time distribution's 10, 30, 50, 70 and 90 % points (the odd points of its 10-step grid),
        so a distribution fitted to the latent space (``time=flm``: uniform in the argmax accuracy, which
        moves with the vocabulary) is validated at the same accuracy levels whatever the tokenizer.
    compile: ``torch.compile`` the backbone in place (``nn.Module.compile``: state-dict keys unchanged)
        when fitting starts; worth it on CUDA, a slow start-up on a CPU (docs/benchmarks.md).
    self_cond_prob: probability of the self-conditioning first pass per training step (module
        docstring); > 0 exactly when the backbone has ``self_condition=True``.
    condition: a :class:`~textflow.conditioning.ConditionMasks` for conditional training, or None (an
        empty mapping, the ``none`` option of the ``condition`` group, means None).
    decoder_prob: probability that a step is ELF's decoder step instead of a flow step (0 = never).
    decoder_time: the per-token logit-normal mixing weights of the decoder step (ELF: mean 0.8, std 0.8).
    """

    def __init__(self, *, autoencoder: LatentAutoencoder, backbone: nn.Module, path: ProbPath,
                 optimizer: Callable, scheduler: Optional[Callable] = None, train_time=None,
                 readout_weight: float = 1.0, ema_decay: float = 0.999,
                 val_times: tuple | None = (0.1, 0.3, 0.5, 0.7, 0.9), compile: bool = False,
                 self_cond_prob: float = 0.0, condition: Optional[ConditionMasks] = None,
                 decoder_prob: float = 0.0, decoder_time: Optional[LogitNormalTime] = None):
        self_cond_prob = require_number("module.self_cond_prob", self_cond_prob, low=0, high=1,
                                        hint=" (0 = no self-conditioning; ELF uses 0.5)")
        self_conditioned = bool(getattr(backbone, "self_condition", False))
        if self_cond_prob > 0 and not self_conditioned:
            raise ConfigError(f"module.self_cond_prob={self_cond_prob:g} needs backbone.self_condition=true "
                              f"(a backbone that reads [z, x_prev])")
        if self_conditioned and self_cond_prob == 0:
            raise ConfigError("backbone.self_condition=true needs module.self_cond_prob > 0 (ELF uses 0.5); "
                              "with 0 its x_prev input is never trained")
        if condition is not None and not isinstance(condition, ConditionMasks):
            if condition:  # the `none` option composes to an empty mapping
                raise ConfigError(f"module.condition={condition!r} is invalid; choose condition@module.condition=masks "
                                  f"or none")
            condition = None
        decoder_prob = require_number("module.decoder_prob", decoder_prob, low=0, high=1, high_open=True,
                                      hint=" (0 = no decoder steps; ELF uses 0.5)")
        if decoder_prob > 0 and autoencoder.readout_kind.name != "parallel":
            raise ConfigError(f"module.decoder_prob={decoder_prob:g} needs a per-token readout (autoencoder=embed or "
                              f"vae); the {autoencoder.readout_kind.name} readout has no per-token cross-entropy")
        prediction_of(autoencoder).check(path, scale_tokens=int(getattr(backbone, "scale_tokens", 0)))
        super().__init__(optimizer=optimizer, scheduler=scheduler)
        self.net = nn.ModuleDict({"autoencoder": autoencoder, "backbone": backbone})
        self.ema = EMA(self.net, decay=ema_decay)
        self.path = path
        # a time distribution that describes the latent space (time=flm) reads its unset knobs from this model
        self.train_time = fit_time(train_time if train_time is not None else UniformTime(), autoencoder=autoencoder,
                                   path=path)
        self.readout_weight = float(readout_weight)
        self.val_times = tuple(float(t) for t in (self.train_time.grid(10)[1::2].tolist() if val_times is None
                                                  else val_times))
        self.compile_backbone = bool(compile)
        self.self_cond_prob = self_cond_prob
        self.self_conditioned = self_conditioned
        self.scale_tokens = int(getattr(backbone, "scale_tokens", 0))
        self.condition = condition
        self.decoder_prob = decoder_prob
        self.decoder_time = decoder_time if decoder_time is not None else LogitNormalTime(mean=0.8, std=0.8)

    def trained_parameters(self) -> list:
        """The online networks' trainable parameters (never the EMA copy's)."""
        return [p for p in self.net.parameters() if p.requires_grad]

    def denoiser(self, *, use_ema: bool = True) -> FlowDenoiser:
        nets = self.ema.module if use_ema else self.net
        return FlowDenoiser(backbone=nets["backbone"], path=self.path, autoencoder=nets["autoencoder"])

    def flow_loss(self, nets: nn.ModuleDict, x: Tensor, t: Tensor, noise: Tensor, *,
                  self_condition: bool = False, scale: Optional[Tensor] = None,
                  given: Optional[Tensor] = None, dropped: Optional[Tensor] = None) -> Tensor:
        """Flow matching loss on clean latents ``x`` (already detached: the stop-gradient target); the
        variants are :func:`textflow.objectives.flow_matching_loss`'s."""
        return flow_matching_loss(nets["backbone"], self.path, x=x, t=t, noise=noise, self_condition=self_condition,
                                  scale=scale, given=given, dropped=dropped, head=prediction_of(nets["autoencoder"]))

    def on_fit_start(self) -> None:
        """Compile the backbone if asked; two-stage runs: standardise the frozen autoencoder's latents."""
        if self.compile_backbone:
            self.net["backbone"].compile()
        autoencoder = self.net["autoencoder"]
        if isinstance(autoencoder, NormalizedAutoencoder) and not bool(autoencoder.fitted):
            shuffled = self.trainer.datamodule.train_dataloader()  # statistics: its blocks in order
            autoencoder.fit_statistics(DataLoader(shuffled.dataset, batch_size=shuffled.batch_size), device=self.device)
            self.ema.module["autoencoder"].load_state_dict(autoencoder.state_dict())

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        t = self.train_time.sample(batch.shape[0], device=batch.device)
        encoded = self.net["autoencoder"].flow_latents(batch)  # a decoder step trains through it
        # the flow target is detached (stop-gradient); one-hot latents come as their ids (types.OneHotLatents)
        x = encoded.detach()
        noise = torch.randn(x.shape, dtype=x.dtype, device=x.device)
        # one coin per step, from the step's seeded stream (rng.py); none drawn without self-conditioning
        coin = self.self_cond_prob > 0 and bool(torch.rand(()) < self.self_cond_prob)
        # ELF's variants draw only when on, in this order (module docstring)
        scale = None
        if self.scale_tokens:
            scale = sample_guidance_scales(batch.shape[0], scale_range=self.net["backbone"].scale_range,
                                           device=batch.device)
        given = dropped = None
        if self.condition is not None:
            given, dropped = self.condition.sample(*batch.shape[:2], device=batch.device)
        decoder_step = self.decoder_prob > 0 and bool(torch.rand(()) < self.decoder_prob)
        if decoder_step:
            main = decoder_loss(self.net["autoencoder"], batch, latents=dense(encoded),
                                time=self.decoder_time,
                                noise_scale=self.path.prior_scale())
            logged = {"train/decoder_loss": main}
        else:
            main = self.flow_loss(self.net, x, t, noise, self_condition=coin, scale=scale, given=given, dropped=dropped)
            logged = {"train/flow_loss": main}
        ae = self.net["autoencoder"].loss(batch)
        loss = main + self.readout_weight * ae["loss"]
        self.log_dict({"train/loss": loss, **logged,
                       **{f"train/{k}": v for k, v in ae.items() if k != "loss"}},
                      prog_bar=False, on_step=True, on_epoch=False, batch_size=batch.shape[0])
        self.log("loss", loss, prog_bar=True, logger=False, batch_size=batch.shape[0])
        return loss

    def optimizer_step(self, *args, **kwargs) -> None:
        """The optimizer step, then the EMA update. Both happen before any callback's
        ``on_train_batch_end``, where ``ModelCheckpoint`` writes, so the checkpoint of step ``s`` holds
        the EMA of step ``s`` and a resumed run's EMA equals an uninterrupted run's (docs/reliability.md)."""
        super().optimizer_step(*args, **kwargs)
        self.ema.update(self.net, sharded_root=self.trainer.model)

    @torch.no_grad()
    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        nets = self.ema.module
        g = stream_generator(batch_idx, "validation")
        x = nets["autoencoder"].flow_latents(batch)
        noise = torch.randn(x.shape, generator=g).to(x.device, x.dtype)
        t = torch.full((batch.shape[0],), self.val_times[batch_idx % len(self.val_times)], device=x.device)
        metrics = {"val/flow_loss": self.flow_loss(nets, x, t, noise),  # x_prev = 0 if self-conditioned
                   **{f"val/{k}": v for k, v in nets["autoencoder"].reconstruction_metrics(batch).items()}}
        self.log_dict(metrics, on_step=False, on_epoch=True, sync_dist=True, batch_size=batch.shape[0])


FLOW = StageKeys("flow", reads=("autoencoder", "backbone", "path", "module", "autoencoder_ckpt"),
                 unread={"teacher_ckpt": "only stage=distill and stage=flow_map read it"})


def flow_stage(cfg: DictConfig, *, tokenizer, seq_len: int, autoencoder_ckpt: str | None = None) -> LatentFlowModule:
    """``stage=flow``: train the backbone jointly with its autoencoder, or, with ``autoencoder_ckpt``,
    on the frozen, standardised latents of a stage-one autoencoder (docs/autoencoders.md)."""
    FLOW.refuse_unread_overrides(cfg)
    tokenizer_json, vocab_size = tokenizer_vocabulary(tokenizer)
    weights = None
    if autoencoder_ckpt:
        inner_cfg, weights = read_autoencoder(str(autoencoder_ckpt), tokenizer=tokenizer, expected=cfg.autoencoder)
        cfg = cfg.copy()
        with open_dict(cfg):  # data may interpolate the autoencoder's keys (digits: latent_tokens)
            cfg.data = OmegaConf.to_container(cfg.data, resolve=True)
            cfg.autoencoder = {"_target_": NORMALIZED, "autoencoder": inner_cfg}
    module = build_module(cfg, vocab_size=vocab_size, seq_len=seq_len)
    positions = getattr(module.net["autoencoder"], "latent_tokens", seq_len)
    if positions != seq_len:
        raise ConfigError(f"data.seq_len={seq_len} but the autoencoder makes {positions} latent positions per "
                          f"example; set data.seq_len={positions}")
    if weights is not None:
        for nets in (module.net, module.ema.module):
            nets["autoencoder"].unwrap().load_state_dict(weights)
    if tokenizer is not None:
        module.net["autoencoder"].bind_tokenizer(tokenizer)
    module.run_info = make_run_info(cfg, tokenizer_json=tokenizer_json, vocab_size=vocab_size, seq_len=seq_len)
    return module
