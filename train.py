"""Train a latent flow model: ``python train.py experiment=quickstart`` (see README.md).

seed -> data (tokenizer first: the model needs the vocabulary size) -> autoencoder / backbone / path /
module -> callbacks / loggers / trainer -> fit -> final checkpoint. Every component comes from its
config group's ``_target_``; nothing here branches on a name.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from textflow.checks import require_int
from textflow.allocator import keep_freed_memory
from textflow.cli import guarded, instantiate_dict
from textflow.cli.preflight import launcher_folder_error, preflight
from textflow.io import atomic_write_json
from textflow.runs.lock import RunFolderLock, global_rank


def link_latest(run_dir: Path) -> None:
    """Point ``<run dir>/../../latest`` (e.g. outputs/train/latest) at this run, atomically."""
    latest = run_dir.parent.parent / "latest"
    if run_dir.parent.name != "runs":
        return  # a sweep or a custom hydra.run.dir: leave the user's folders alone
    tmp = latest.with_name(f".latest.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(run_dir.resolve(), latest.parent.resolve()))
    os.replace(tmp, latest)


def run(cfg: DictConfig) -> tuple[dict, dict]:
    """Train; returns (metrics, objects) so tests and sweepers can call it directly. The run holds its
    folder while it lives (docs/reliability.md)."""
    require_int("seed", cfg.seed, low=0)
    with RunFolderLock(cfg.dirs.output_dir, rank=global_rank()):
        return train_run(cfg)


def train_run(cfg: DictConfig) -> tuple[dict, dict]:
    import lightning as L  # loaded after the command line is checked (__main__ below)
    from lightning.pytorch.utilities import rank_zero_info

    from textflow.callbacks.finite import FiniteGuard
    from textflow.dashboards.runs import finish_wandb_runs
    from textflow.training.distributed import DistributedChecks
    from textflow.training.resume import resume_checkpoint

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    torch.set_float32_matmul_precision("high")
    datamodule = instantiate(cfg.data)
    tokenizer = datamodule.setup_tokenizer()
    seq_len = int(cfg.data.seq_len)
    module = instantiate(cfg.stage)(cfg, tokenizer=tokenizer, seq_len=seq_len)  # conf/stage/*.yaml
    loggers = instantiate_dict(cfg.get("logger"))
    # the guards whatever the config says
    callbacks = [*instantiate_dict(cfg.get("callbacks")), FiniteGuard(), DistributedChecks()]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    try:
        n_params = sum(p.numel() for p in module.parameters() if p.requires_grad)
        for lg in loggers:
            lg.log_hyperparams({**{k: OmegaConf.to_container(cfg[k], resolve=True)
                                   if OmegaConf.is_config(cfg[k]) else cfg[k] for k in cfg if k != "hydra"},
                                "n_params": n_params})
        vocab = f"vocab {tokenizer.vocab_size}" if tokenizer is not None else "no tokenizer (continuous data)"
        rank_zero_info(f"[textflow] {n_params / 1e6:.2f} M trainable parameters; {vocab}; "
                       f"outputs in {cfg.dirs.output_dir}")
        ckpt = resume_checkpoint(cfg, module.run_info)
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt, weights_only=True)

        final = Path(cfg.dirs.output_dir) / "checkpoints" / "final.ckpt"
        trainer.save_checkpoint(final, weights_only=False)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()
                   if torch.is_tensor(v) and v.numel() == 1}
        metrics.update(global_step=trainer.global_step, n_params=n_params)
        exported = getattr(module, "export_path", None)  # stages that export a sampling checkpoint (distill)
        if exported:
            final = Path(exported)
        if trainer.is_global_zero:
            atomic_write_json(Path(cfg.dirs.output_dir) / "train_metrics.json",
                              {"checkpoint": str(final), **metrics})
            link_latest(Path(cfg.dirs.output_dir))
            print(f"[textflow] checkpoint: {final}")
        return metrics, {"trainer": trainer, "module": module, "datamodule": datamodule, "checkpoint": final}
    finally:
        finish_wandb_runs(loggers)  # the next run in this process (a `-m` sweep's next job) starts its own


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics, _ = guarded(run, cfg)
    return metrics.get("val/flow_loss")


if __name__ == "__main__":
    preflight(Path(__file__).resolve().parent / "conf", "train")  # bad overrides: one line, exit 2
    if problem := launcher_folder_error(sys.argv[1:], os.environ):
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    keep_freed_memory()  # glibc keeps freed tensors' pages (textflow/allocator.py)
    # Lightning takes seconds to import, so a bad command line is answered before it; it must be imported
    # before Hydra sets up logging in main(), or its messages print twice (its own handler and Hydra's)
    import lightning  # noqa: F401
    main()
