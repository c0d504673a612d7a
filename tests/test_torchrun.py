"""Training past one machine, on one (docs/training.md, "Past one machine: torchrun, SLURM, FSDP").

train.py under an external launcher: ``torchrun --nproc-per-node=2`` starts two CPU processes (gloo)
and Lightning detects torchrun's environment and starts none itself. A run stopped half way resumes
from its last checkpoint into the same folder and ends with the weights (EMA included), optimizer step
and schedule of an uninterrupted run, bit for bit, under DDP and under FSDP (conf/trainer/fsdp.yaml),
and its checkpoint samples. FSDP runs here on the CPU through :class:`CPUFSDPStrategy`, a stand-in that
differs from the GPU strategy only where torch and Lightning refuse or break on the CPU. Processes that
would not agree are stopped with one line.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.strategies import FSDPStrategy
from lightning.pytorch.strategies import fsdp as lightning_fsdp
from torch import nn

from conftest import ROOT, compose_config, tiny_train_overrides
from test_cli import run_cli
from textflow.backbones.dit import DiTBlock
from textflow.cli import instantiate_dict
from textflow.cli.preflight import launcher_folder_error
from textflow.errors import ConfigError
from textflow.training.distributed import check_shardable

STEPS = 8  # the whole run; the first launch stops at half of it
# What trainer=fsdp refuses (textflow.training.distributed) is left out of every run, so that the DDP and
# FSDP runs are the same run: the tied readout's scalar temperature and the callbacks that read the
# sharded EMA copy outside the forward (under DDP they run as with one process: tests/test_ddp.py).
SHARDABLE = ["autoencoder.readout=linear", "callbacks.samples.every_n_validations=0",
             "callbacks.diagnostics.every_n_validations=0"]
# the LR schedule spans the whole run in both launches, so stopping at STEPS // 2 and resuming is one run
COMMON = ["debug=fast", "data=fixture", "trainer.max_steps={steps}", f"module.scheduler.total_steps={STEPS}",
          "callbacks.model_checkpoint.every_n_train_steps=2", *SHARDABLE]
DDP = ["trainer=ddp_cpu"]  # devices: 2 = --nproc-per-node
FSDP_ON_CPU = ["trainer=fsdp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true",
               "trainer.strategy._target_=test_torchrun.CPUFSDPStrategy"]
ACTIVATION_CHECKPOINTING = "trainer.strategy.activation_checkpointing_policy=${trainer.strategy.auto_wrap_policy}"


def torchrun(out: Path | str, cache: Path, steps: int, *overrides: str):
    args = [a.format(steps=steps) for a in COMMON] + [*overrides, f"dirs.cache_dir={cache}", f"hydra.run.dir={out}"]
    return run_cli("-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc-per-node=2", "train.py",
                   *args, env_extra={"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "tests")})


def output(proc) -> str:
    return proc.stdout + proc.stderr


def assert_two_gloo_processes(proc) -> None:
    """Two processes of one gloo group, both started by torchrun (Lightning started none of its own)."""
    assert proc.returncode == 0, output(proc)[-4000:]
    log = output(proc)
    assert "distributed_backend=gloo" in log and "Starting with 2 processes" in log
    ranks = sorted(line.split("GLOBAL_RANK: ")[1][:3] for line in log.splitlines() if "GLOBAL_RANK: " in line)
    assert ranks == ["0, ", "1, "], ranks


def checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_run(resumed: Path, straight: Path) -> None:
    a, b = checkpoint(resumed / "checkpoints" / "final.ckpt"), checkpoint(straight / "checkpoints" / "final.ckpt")
    assert a["global_step"] == b["global_step"] == STEPS
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert any(k.startswith("ema.module.backbone.blocks.") for k in a["state_dict"])
    different = [k for k, v in b["state_dict"].items() if not torch.equal(v, a["state_dict"][k])]
    assert different == [], different
    assert a["lr_schedulers"] == b["lr_schedulers"] and a["textflow"] == b["textflow"]


def resume(half_run: Path, out: Path, cache: Path, *overrides: str) -> None:
    shutil.copytree(half_run, out)
    proc = torchrun(out, cache, STEPS, *overrides)
    assert_two_gloo_processes(proc)
    assert f"resuming from {out}/checkpoints/last.ckpt" in output(proc)


@pytest.fixture(scope="module")
def half_run(tmp_path_factory, cache_dir) -> Path:
    """The first half of a DDP run launched by torchrun."""
    out = tmp_path_factory.mktemp("torchrun") / "half"
    proc = torchrun(out, cache_dir, STEPS // 2, *DDP)
    assert_two_gloo_processes(proc)
    assert f"checkpoint: {out}/checkpoints/final.ckpt" in proc.stdout
    assert checkpoint(out / "checkpoints" / "last.ckpt")["global_step"] == STEPS // 2
    return out


@pytest.fixture(scope="module")
def straight_fsdp(tmp_path_factory, cache_dir) -> Path:
    """The whole run, uninterrupted, under FSDP; its final checkpoint is one .ckpt that samples."""
    out = tmp_path_factory.mktemp("torchrun") / "straight"
    assert_two_gloo_processes(torchrun(out, cache_dir, STEPS, *FSDP_ON_CPU))
    proc = run_cli("sample.py", f"ckpt_path={out / 'checkpoints' / 'final.ckpt'}", "num_samples=2", "sampler.steps=2",
                   "evaluation=diversity", f"hydra.run.dir={out / 'samples'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len((out / "samples" / "samples.jsonl").read_text().splitlines()) == 2
    return out


@pytest.mark.slow
def test_torchrun_ddp_resumes_from_its_last_checkpoint_exactly(half_run, straight_fsdp, tmp_path, cache_dir):
    resume(half_run, tmp_path / "run", cache_dir, *DDP)
    assert_same_run(tmp_path / "run", straight_fsdp)


@pytest.mark.slow
def test_fsdp_resumes_a_ddp_checkpoint_exactly(half_run, straight_fsdp, tmp_path, cache_dir):
    """A run moves from DDP to FSDP (with activation checkpointing) and goes on exactly: one file format."""
    resume(half_run, tmp_path / "run", cache_dir, *FSDP_ON_CPU, ACTIVATION_CHECKPOINTING)
    assert_same_run(tmp_path / "run", straight_fsdp)


@pytest.mark.slow
def test_processes_that_resume_at_different_steps_stop_in_one_line(half_run, tmp_path, cache_dir):
    """A node that does not see the run folder's checkpoint (here: one folder per rank) would train
    from step 0 and hang at the end; the processes stop at the start of training instead."""
    (tmp_path / "rank0" / "checkpoints").mkdir(parents=True)
    shutil.copy(half_run / "checkpoints" / "last.ckpt", tmp_path / "rank0" / "checkpoints" / "last.ckpt")
    proc = torchrun(f"{tmp_path}/rank${{oc.env:RANK}}", cache_dir, STEPS, *DDP)
    assert proc.returncode != 0
    expected = (f"error: the 2 processes start at different steps (rank 0: {STEPS // 2}, rank 1: 0): each resumes from "
                "<run dir>/checkpoints/last.ckpt (or ckpt_path=) as it sees it")
    assert expected in proc.stderr, proc.stderr[-4000:]
    assert not (tmp_path / "rank0" / "checkpoints" / "final.ckpt").exists()


def test_fsdp_config_builds_the_strategy_for_dit_blocks(tmp_path, cache_dir):
    cfg = compose_config("train", tiny_train_overrides(tmp_path, cache_dir) + ["trainer=fsdp"])
    assert (cfg.trainer.accelerator, cfg.trainer.devices, cfg.trainer.precision) == ("gpu", -1, "bf16-mixed")
    strategy = instantiate(cfg.trainer.strategy)
    assert type(strategy) is FSDPStrategy and strategy._state_dict_type == "full"
    assert strategy.sharding_strategy.name == "FULL_SHARD"
    assert strategy.kwargs["auto_wrap_policy"]._module_classes == {DiTBlock}
    cfg = compose_config("train", tiny_train_overrides(tmp_path, cache_dir) + [
        "trainer=fsdp", "trainer.strategy.sharding_strategy=HYBRID_SHARD",
        ACTIVATION_CHECKPOINTING])
    strategy = instantiate(cfg.trainer.strategy)
    assert strategy.sharding_strategy.name == "HYBRID_SHARD"
    assert strategy._activation_checkpointing_kwargs["auto_wrap_policy"]._module_classes == {DiTBlock}


def test_fsdp_refuses_scalar_parameters_and_callbacks_that_read_the_ema_copy(tmp_path, cache_dir):
    cfg = compose_config("train", tiny_train_overrides(tmp_path, cache_dir))
    trainer = SimpleNamespace(callbacks=instantiate_dict(cfg.callbacks))
    scalar = nn.Module()
    scalar.log_temperature = nn.Parameter(torch.zeros(()))
    with pytest.raises(ConfigError, match=r"cannot shard the scalar parameters log_temperature; .*"
                                          r"autoencoder.readout=linear"):
        check_shardable(trainer, scalar)
    with pytest.raises(ConfigError, match=r"callbacks.samples, callbacks.diagnostics read outside the model's forward; "
                                          r"turn them off \(callbacks.samples.every_n_validations=0 "
                                          r"callbacks.diagnostics.every_n_validations=0\)"):
        check_shardable(trainer, nn.Linear(2, 2))
    off = compose_config("train", tiny_train_overrides(tmp_path, cache_dir) + SHARDABLE)
    check_shardable(SimpleNamespace(callbacks=instantiate_dict(off.callbacks)), nn.Linear(2, 2))


@pytest.mark.parametrize("argv,env,refused", [
    (["debug=fast"], {"WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "x"}, "hydra.run.dir"),  # torchrun
    (["debug=fast"], {"SLURM_NTASKS": "4", "SLURM_PROCID": "3"}, "hydra.run.dir"),  # srun
    (["-m", "seed=0,1"], {"WORLD_SIZE": "2"}, "hydra.sweep.dir"),
    (["debug=fast", "hydra.run.dir=outputs/train/runs/a"], {"WORLD_SIZE": "2"}, None),
    (["debug=fast"], {"WORLD_SIZE": "1"}, None),
    (["debug=fast"], {"SLURM_NTASKS": "4"}, None),  # an allocation, not a task of srun
    (["debug=fast"], {}, None),
])
def test_an_external_launcher_needs_one_run_folder(argv, env, refused):
    problem = launcher_folder_error(argv, env)
    if refused is None:
        assert problem is None
    else:
        assert problem is not None and f"give them one: {refused}=outputs/train/runs/<name>" in problem


# -- the CPU stand-in for FSDPStrategy -----------------------------------------------------------------

def _full_state_dict_in_place(module, world_size: int, rank0_only: bool = True):
    """Lightning's full state-dict context without ``offload_to_cpu``: on a CPU device torch's FSDP
    crashes (SIGSEGV) cloning a state dict it offloads to the CPU."""
    from torch.distributed.fsdp import FullOptimStateDictConfig, FullStateDictConfig, StateDictType
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    return FSDP.state_dict_type(module=module, state_dict_type=StateDictType.FULL_STATE_DICT,
                                state_dict_config=FullStateDictConfig(offload_to_cpu=False, rank0_only=rank0_only),
                                optim_state_dict_config=FullOptimStateDictConfig(offload_to_cpu=False,
                                                                                 rank0_only=rank0_only))


@contextmanager
def _in_place():
    with mock.patch.object(lightning_fsdp, "_get_full_state_dict_context", _full_state_dict_in_place):
        yield


class CPUFSDPStrategy(FSDPStrategy):
    """``FSDPStrategy`` on CPU processes (gloo). Lightning refuses ``type(strategy) is FSDPStrategy``
    without a GPU, torch's FSDP needs ``device_id`` to be the CPU device (Lightning passes None), and
    its full state dict is gathered in place; the wrapping, sharding, checkpoint contents and loading
    are the GPU strategy's."""

    def _setup_model(self, model: nn.Module) -> nn.Module:
        from torch.distributed.fsdp import FullyShardedDataParallel

        model = FullyShardedDataParallel(module=model, cpu_offload=self.cpu_offload,
                                         mixed_precision=self.mixed_precision_config,
                                         sharding_strategy=self.sharding_strategy, device_id=torch.device("cpu"),
                                         **self.kwargs)
        lightning_fsdp._setup_activation_checkpointing(model, self._activation_checkpointing_kwargs)
        return model

    def lightning_module_state_dict(self):
        with _in_place():
            return super().lightning_module_state_dict()

    def optimizer_state(self, optimizer):
        with _in_place():
            return super().optimizer_state(optimizer)

    def load_checkpoint(self, checkpoint_path, weights_only=None):
        with _in_place():
            return super().load_checkpoint(checkpoint_path, weights_only=weights_only)


pytestmark = pytest.mark.filterwarnings("ignore")
