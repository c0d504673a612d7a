"""What every training stage shares (docs/architecture.md, "Config groups"): the LightningModule base
class, the one vocabulary check of a checkpoint handed to a run, and the stage's declaration of the
config keys it reads.

* :class:`TrainingModule`: per-step seeding (:class:`~textflow.training.rng.SeededTrainingSteps`),
  the optimizer and LR schedule built from their ``_partial_`` factories (conf/optimizer), and the
  run info stored in every checkpoint under ``checkpoint["textflow"]`` (docs/reliability.md).
* :func:`tokenizer_vocabulary`: this run's tokenizer JSON and vocabulary size, what
  :func:`textflow.checkpoint.check_same_vocabulary` compares a checkpoint given as ``autoencoder_ckpt=``,
  ``teacher_ckpt=`` or resumed from (``ckpt_path=``) with (it lives with the checkpoint reader, so
  ``sample.py ar_twin=`` uses the same check; it is re-exported here).
* :class:`StageKeys`: which of the stage-dependent root keys (:data:`STAGE_KEYS`) a stage reads; a
  command-line override of one it does not read is refused in one line instead of being ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Optional

import lightning as L
from omegaconf import DictConfig, OmegaConf

from textflow.checkpoint import check_same_vocabulary  # noqa: F401 - re-exported (the stages' check)
from textflow.errors import ConfigError
from textflow.training.optim import fused_choice
from textflow.training.rng import SeededTrainingSteps

# Root keys of conf/train.yaml that only some stages read. Every other root key (data, dirs, trainer,
# callbacks, logger, seed, ckpt_path, resume, stage, experiment, debug, hydra, ...) is read by every
# stage, so overriding it is always allowed.
STAGE_KEYS = ("autoencoder", "backbone", "path", "module", "autoencoder_ckpt", "teacher_ckpt")


class TrainingModule(SeededTrainingSteps, L.LightningModule):
    """Base of the stages' LightningModules.

    Args:
        optimizer: ``_partial_`` optimizer factory taking ``params`` (conf/optimizer/adamw.yaml); named
            parameters for a class with ``takes_named_parameters = True`` (conf/optimizer/muon.yaml).
        scheduler: optional LR-schedule factory called with the optimizer and stepped every
            optimizer step (conf/optimizer/schedule, ``textflow.training.WarmupCosine``).

    A subclass sets :attr:`run_info` (the plain-data run description, ``textflow.checkpoint.make_run_info``)
    and may override :meth:`trained_parameters`; Lightning's ``on_train_batch_start`` is taken by the
    per-step seeding (call ``super()`` if you override it).
    """

    def __init__(self, *, optimizer: Callable, scheduler: Optional[Callable] = None):
        super().__init__()
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.run_info: dict = {}  # resolved config + tokenizer, stored in every checkpoint

    def trained_parameters(self) -> Iterable:
        """The parameters the optimizer updates (default: every parameter that requires a gradient)."""
        return [p for p in self.parameters() if p.requires_grad]

    def named_trained_parameters(self) -> list:
        """``(name, parameter)`` for :meth:`trained_parameters`, in its order, named as in
        ``named_parameters()`` (what a name-splitting optimizer such as ``MuonWithAdamW`` is given)."""
        names = {id(p): name for name, p in self.named_parameters()}
        return [(names[id(p)], p) for p in self.trained_parameters()]

    def make_optimizer(self, *, mixed_precision: bool = False):
        """The optimizer over :meth:`trained_parameters`, from its factory. A class with
        ``takes_named_parameters = True`` (textflow.training.MuonWithAdamW) gets (name, parameter) pairs,
        every other one (torch.optim.AdamW) the plain parameters; ``fused: auto`` in the factory is
        decided here (:func:`textflow.training.optim.fused_choice`: fused unless ``mixed_precision``)."""
        factory = self.optimizer_factory
        named = getattr(getattr(factory, "func", factory), "takes_named_parameters", False) is True
        fused = getattr(factory, "keywords", {}).get("fused")
        extra = {"fused": fused_choice(fused, mixed_precision=mixed_precision)} if fused is not None else {}
        return factory(params=self.named_trained_parameters() if named else self.trained_parameters(), **extra)

    def configure_optimizers(self):
        try:
            precision = str(self.trainer.precision)
        except RuntimeError:  # not attached to a trainer (built alone, as the tests and benchmarks do)
            precision = "32-true"
        optimizer = self.make_optimizer(mixed_precision="mixed" in precision)
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer), "interval": "step"}}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        """Norm clipping under FSDP (conf/trainer/fsdp.yaml) through the sharded root's own
        ``clip_grad_norm_``, which takes the norm over every shard (Lightning's FSDP precision refuses
        ``gradient_clip_algorithm='norm'``); any other strategy clips as Lightning does."""
        clip_sharded = getattr(self.trainer.model, "clip_grad_norm_", None)  # FullyShardedDataParallel only
        if clip_sharded is not None and gradient_clip_val and gradient_clip_algorithm in (None, "norm"):
            clip_sharded(float(gradient_clip_val))
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["textflow"] = dict(self.run_info)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.run_info = dict(checkpoint.get("textflow", {}))


def tokenizer_vocabulary(tokenizer) -> tuple[str | None, int | None]:
    """(tokenizer JSON, vocab size) of this run's tokenizer; both None for non-text data (digits)."""
    return (None, None) if tokenizer is None else (tokenizer.to_json(), int(tokenizer.vocab_size))


def command_line_overrides(cfg: DictConfig) -> list[str]:
    """The run's command-line overrides (``hydra.overrides.task``): from ``cfg.hydra`` when the config
    was composed with it (tests, ``compose(return_hydra_config=True)``), else from the running Hydra
    job (``@hydra.main`` removes ``hydra`` from the task's config); none for library use."""
    # as typed: an override's value may be an interpolation (``a='${b}'``), which must not be resolved here
    if "hydra" in cfg:
        return [str(o) for o in OmegaConf.to_container(cfg.hydra.overrides.task, resolve=False)]
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return [str(o) for o in OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False)]


def override_root(override) -> str:
    """The root config key a parsed Hydra override sets: ``time@module.train_time=uniform`` -> module,
    ``tokenizer@data.tokenizer=gpt2`` -> data, ``+trainer.foo=1`` -> trainer."""
    package = override.package
    key = package if package not in (None, "", "_global_") else override.key_or_group
    return str(key).split(".")[0]


@dataclass(frozen=True)
class StageKeys:
    """The stage-dependent keys a stage reads.

    Args:
        name: the stage's option name (``stage=<name>``).
        reads: the :data:`STAGE_KEYS` the stage reads.
        unread: why it does not read each of the others (shown in the error).
    """

    name: str
    reads: tuple[str, ...]
    unread: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        unknown = (set(self.reads) | set(self.unread)) - set(STAGE_KEYS)
        missing = set(STAGE_KEYS) - set(self.reads) - set(self.unread)
        if unknown or missing or set(self.reads) & set(self.unread):
            raise ValueError(f"stage {self.name}: reads {self.reads} and unread {sorted(self.unread)} must split "
                             f"{STAGE_KEYS} exactly")

    def refuse_unread_overrides(self, cfg: DictConfig) -> None:
        """Raise :class:`ConfigError` (one line) at the first command-line override of a key this
        stage does not read. Values set by ``experiment=`` or ``debug=`` files are not command-line
        overrides and stay allowed (an experiment serves every stage)."""
        from hydra.core.override_parser.overrides_parser import OverridesParser

        lines = command_line_overrides(cfg)
        for override in OverridesParser.create().parse_overrides(lines) if lines else []:
            root = override_root(override)
            if root in self.unread:
                raise ConfigError(f"stage={self.name} does not use {root} ({self.unread[root]}); "
                                  f"remove {override.input_line}")
