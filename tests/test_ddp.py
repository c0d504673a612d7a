"""A 2-process CPU DDP run of the tiny config (Lightning's own strategy, gloo) completes and its
checkpoint samples."""

from __future__ import annotations

import pytest

from test_cli import run_cli


def test_two_process_cpu_ddp_trains_and_its_checkpoint_samples(tmp_path, cache_dir):
    out = tmp_path / "ddp"
    proc = run_cli("train.py", "debug=fast", "data=fixture", "trainer=ddp_cpu", "trainer.max_steps=4",
                   "callbacks.model_checkpoint.every_n_train_steps=2", f"dirs.cache_dir={cache_dir}",
                   f"hydra.run.dir={out}", env_extra={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "distributed_backend=gloo" in proc.stderr + proc.stdout
    ckpt = out / "checkpoints" / "final.ckpt"
    assert ckpt.is_file()
    proc = run_cli("sample.py", f"ckpt_path={ckpt}", "num_samples=2", "sampler.steps=2", "evaluation=diversity",
                   f"hydra.run.dir={tmp_path / 's'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "s" / "samples.jsonl").is_file()


pytestmark = pytest.mark.filterwarnings("ignore")
