"""Optimizers and learning-rate schedules (conf/optimizer, docs/architecture.md "Config groups").

* :class:`MuonWithAdamW`: Muon for the hidden weight matrices and AdamW for every other parameter,
  one ``torch.optim.Optimizer`` (conf/optimizer/muon.yaml), as ELF trains (arXiv 2606.30705).
* :class:`WarmupCosine`: a schedule is a small class configured with its hyperparameters
  (conf/module/*.yaml) and called with the optimizer in ``configure_optimizers``: ``schedule(optimizer)``.
  It is a class, not a ``_partial_`` function, so a checkpoint's config names only classes
  (docs/reliability.md).
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Iterable, Optional

import torch
from torch import Tensor
from torch.optim import AdamW, Muon, Optimizer
from torch.optim.lr_scheduler import LambdaLR

from textflow.checks import require_int, require_number
from textflow.errors import ConfigError
from textflow.training.muon import check_ns_dtype, muon_group_step

# A parameter is a hidden matrix when its qualified name lies inside a numbered transformer block:
# ``blocks.<i>.`` is the block list of the DiT (textflow.backbones.dit) and of the autoencoders'
# transformers (textflow.autoencoders.layers.Transformer).
HIDDEN_PATTERN = r"(^|\.)blocks\.\d+\."


def fused_choice(fused, *, mixed_precision: bool) -> Optional[bool]:
    """The ``fused`` argument AdamW gets for the config value ``fused`` (conf/optimizer/adamw.yaml):
    ``auto`` is True (one fused kernel for the whole step; on a CPU 3-4x faster than torch's multi-tensor
    loop, docs/benchmarks.md "Large vocabularies") unless the trainer runs under mixed precision, where
    Lightning refuses a fused optimizer with gradient clipping; ``true``, ``false`` and ``null`` (torch's
    default, the loop) are taken as they are."""
    if fused == "auto":
        return not mixed_precision
    if fused is None or isinstance(fused, bool):
        return fused
    raise ConfigError(f"optimizer.fused={fused!r} is invalid; choose one of auto, true, false, null")


class MuonWithAdamW(Optimizer):
    """Muon on the hidden weight matrices, AdamW on everything else, stepped together as one optimizer.

    The split (the rule ELF's Muon training follows, arXiv 2606.30705): a parameter goes to **Muon**
    when it is 2-D and its name matches ``hidden_pattern`` (default :data:`HIDDEN_PATTERN`: inside a
    numbered transformer block, ``blocks.<i>.``), i.e. the attention ``qkv``/``proj``, the MLP and the
    per-block adaLN modulation (``ada``) matrices of the DiT and of the VAE / AR autoencoders'
    transformers. Everything else goes to **AdamW**: the token embedding tables, the readout / output
    heads (``readout``, ``to_logits``, the DiT's ``proj_out`` and ``ada_out``), the input projections
    (``proj_in``, ``from_latent``), the time MLP, position tables, biases, gains and every non-2-D
    parameter. Muon orthogonalises a matrix's update, which suits the square-ish hidden maps but not
    an embedding lookup or a readout whose rows are per-token.

    Parameter groups: one Muon group then one AdamW group (an empty side is left out, with a warning
    for an empty Muon side), each tagged ``kind`` (``"muon"`` / ``"adamw"``) and ``param_names``, so
    an LR schedule over ``param_groups`` (:class:`WarmupCosine`) scales both learning rates by the same
    factor, gradient clipping sees every parameter, and ``state_dict()`` / ``load_state_dict()`` round
    trip both optimizers' state (a checkpoint of another split is refused on load). ``step`` runs
    Muon's update (:func:`textflow.training.muon.muon_group_step`: ``torch.optim.Muon``'s, with the
    Newton-Schulz dtype chosen per device) and ``torch.optim.AdamW`` on those groups and this state.

    Args:
        params: ``(name, parameter)`` pairs; names are needed for the split, so
            :class:`~textflow.training.base.TrainingModule` passes named parameters to an optimizer
            class with ``takes_named_parameters = True``.
        lr, betas, eps, weight_decay: AdamW's, named as in conf/optimizer/adamw.yaml so an override
            written for AdamW (``module.optimizer.lr=...``, conf/stage/distill.yaml) keeps its meaning.
        muon_lr, muon_momentum, muon_nesterov, muon_weight_decay, muon_ns_steps, muon_adjust_lr_fn:
            ``torch.optim.Muon``'s ``lr``, ``momentum``, ``nesterov``, ``weight_decay``, ``ns_steps``
            and ``adjust_lr_fn`` (``None``/``"original"``: lr × sqrt(max(1, rows/cols));
            ``"match_rms_adamw"``: lr × 0.2·sqrt(max(rows, cols)), AdamW-sized updates).
        muon_ns_dtype: the dtype of Muon's Newton-Schulz iteration (:mod:`textflow.training.muon`):
            ``"auto"`` (bfloat16 where the device has native bfloat16 matmuls, as torch's Muon always
            uses, float32 on CPUs that would emulate them), ``"bfloat16"`` or ``"float32"``.
        hidden_pattern: regular expression searched in a 2-D parameter's name to send it to Muon.
        fused: AdamW's ``fused`` (True: one fused kernel; None: torch's loop). ``auto`` in the config is
            decided by :meth:`~textflow.training.base.TrainingModule.make_optimizer`
            (:func:`fused_choice`) before the optimizer is built.
    """

    takes_named_parameters = True  # TrainingModule.configure_optimizers passes (name, parameter) pairs

    def __init__(self, params: Iterable[tuple[str, Tensor]], *, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.98), eps: float = 1e-8, weight_decay: float = 0.01,
                 muon_lr: float = 0.02, muon_momentum: float = 0.95, muon_nesterov: bool = True,
                 muon_weight_decay: float = 0.01, muon_ns_steps: int = 5,
                 muon_adjust_lr_fn: Optional[str] = None, muon_ns_dtype: str = "auto",
                 hidden_pattern: str = HIDDEN_PATTERN, fused: Optional[bool] = None):
        named = list(params)
        if not named or not all(isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
                                and isinstance(item[1], Tensor) for item in named):
            raise ConfigError("MuonWithAdamW needs a non-empty list of (name, parameter) pairs: the split "
                              "into hidden matrices (Muon) and the rest (AdamW) is by name "
                              "(docs/architecture.md)")
        try:
            hidden = re.compile(str(hidden_pattern))
        except re.error as err:
            raise ConfigError(f"optimizer.hidden_pattern={hidden_pattern!r} is not a regular expression: "
                              f"{err}") from err
        if muon_adjust_lr_fn not in (None, "original", "match_rms_adamw"):
            raise ConfigError(f"optimizer.muon_adjust_lr_fn={muon_adjust_lr_fn!r} is invalid; it must be "
                              "null, original or match_rms_adamw")
        if not isinstance(muon_nesterov, bool):
            raise ConfigError(f"optimizer.muon_nesterov={muon_nesterov!r} is invalid; it must be true or "
                              "false")
        check_ns_dtype(muon_ns_dtype)
        if fused is not None and not isinstance(fused, bool):  # "auto" is decided before (make_optimizer)
            raise ConfigError(f"MuonWithAdamW(fused={fused!r}) is invalid; it must be true, false or null")
        betas = tuple(betas)
        if len(betas) != 2:
            raise ConfigError(f"optimizer.betas={list(betas)!r} is invalid; it must be two numbers in [0, 1)")
        adamw_kw = dict(lr=require_number("optimizer.lr", lr, low=0),
                        betas=tuple(require_number("optimizer.betas", b, low=0, high=1) for b in betas),
                        eps=require_number("optimizer.eps", eps, low=0),
                        weight_decay=require_number("optimizer.weight_decay", weight_decay, low=0),
                        fused=fused)
        muon_kw = dict(lr=require_number("optimizer.muon_lr", muon_lr, low=0),
                       momentum=require_number("optimizer.muon_momentum", muon_momentum, low=0, high=1),
                       nesterov=muon_nesterov,
                       weight_decay=require_number("optimizer.muon_weight_decay", muon_weight_decay, low=0),
                       ns_steps=require_int("optimizer.muon_ns_steps", muon_ns_steps, low=1, high=99),
                       adjust_lr_fn=muon_adjust_lr_fn)
        to_muon = [(n, p) for n, p in named if is_hidden_matrix(n, p, hidden)]
        to_adamw = [(n, p) for n, p in named if not is_hidden_matrix(n, p, hidden)]
        if not to_muon:
            warnings.warn(f"MuonWithAdamW: no parameter is a hidden matrix (2-D, name matching "
                          f"{hidden.pattern!r}); every parameter is trained with AdamW", stacklevel=2)
        # Each side's group dict is built by its torch optimizer (every default key filled in and
        # checked), then shared: this optimizer owns the groups and the state. AdamW's update is torch's
        # (an inner AdamW bound to those groups); Muon's is textflow.training.muon's, which equals
        # torch's with its iteration in bfloat16 and lets the dtype follow the device.
        inner = {}
        if to_muon:
            inner["muon"] = Muon([{"params": to_muon}], **muon_kw)
        if to_adamw:
            inner["adamw"] = AdamW([{"params": to_adamw}], **adamw_kw)
        groups = []
        for kind, optimizer in inner.items():
            for group in optimizer.param_groups:
                group["kind"] = kind
                groups.append(group)
        super().__init__(groups, {"lr": adamw_kw["lr"]})  # defaults["lr"]: the AdamW lr (module.optimizer.lr)
        # in defaults (pickled and copied with the optimizer) but not in the groups, so optimizer states
        # saved before the knob existed load unchanged
        self.defaults["muon_ns_dtype"] = muon_ns_dtype
        self._inner = {k: v for k, v in inner.items() if k == "adamw"}

    def _inner_adamw(self) -> Optional[Optimizer]:
        """The torch AdamW that updates the ``adamw`` groups, bound to this optimizer's current groups
        and state (``load_state_dict`` replaces both; a copy or unpickled optimizer rebuilds it)."""
        groups = [g for g in self.param_groups if g["kind"] == "adamw"]
        if not groups:
            return None
        cache = self.__dict__.setdefault("_inner", {})
        if "adamw" not in cache:
            cache["adamw"] = AdamW([{"params": list(g["params"])} for g in groups])
        optimizer = cache["adamw"]
        optimizer.param_groups, optimizer.state = groups, self.state
        return optimizer

    @torch.no_grad()
    def step(self, closure=None):
        """Evaluate ``closure`` (with gradients enabled) if given, then one Muon and one AdamW update."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        ns_dtype = self.defaults.get("muon_ns_dtype", "auto")
        for group in self.param_groups:
            if group["kind"] == "muon":
                muon_group_step(group, self.state, ns_dtype=ns_dtype)
        adamw = self._inner_adamw()
        if adamw is not None:
            adamw.step()
        return loss

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state saved by an optimizer with the same split (same kinds and parameter names per
        group; torch checks only the counts), else raise ``ValueError`` naming the difference."""
        mine = [(g["kind"], list(g["param_names"])) for g in self.param_groups]
        saved = [(g.get("kind"), list(g.get("param_names", []))) for g in state_dict["param_groups"]]
        if mine != saved:
            raise ValueError(f"MuonWithAdamW: the saved optimizer state splits the parameters differently "
                             f"(saved groups {[(k, len(n)) for k, n in saved]}, this one "
                             f"{[(k, len(n)) for k, n in mine]}); resume with the same model and "
                             "hidden_pattern")
        super().load_state_dict(state_dict)


def is_hidden_matrix(name: str, param: Tensor, pattern: "re.Pattern[str] | str" = HIDDEN_PATTERN) -> bool:
    """The split rule of :class:`MuonWithAdamW`: a 2-D parameter whose name matches ``pattern``."""
    return param.ndim == 2 and re.search(pattern, name) is not None


class WarmupCosine:
    """Linear warm-up for ``warmup_steps``, then cosine decay to ``min_ratio * lr`` at ``total_steps``."""

    def __init__(self, *, warmup_steps: int, total_steps: int, min_ratio: float = 0.1):
        self.warmup_steps = require_int("scheduler.warmup_steps", warmup_steps, low=0)
        self.total_steps = max(require_int("scheduler.total_steps", total_steps), 1)
        self.min_ratio = require_number("scheduler.min_ratio", min_ratio, low=0, high=1)

    def factor(self, step: int) -> float:
        warm, total = self.warmup_steps, self.total_steps
        if step < warm:
            return (step + 1) / warm
        progress = min((step - warm) / max(total - warm, 1), 1.0)
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    def __call__(self, optimizer: Optimizer) -> LambdaLR:
        return LambdaLR(optimizer, lambda step: self.factor(step))  # a plain function: not pickled into state
