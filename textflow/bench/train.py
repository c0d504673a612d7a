"""Training throughput through the real Lightning loop, against the machine's measured matmul peak.

Model FLOPs per step use the standard dense-transformer count (Kaplan et al. 2020; PaLM appendix B):
``6 * N_matmul * tokens`` for the per-token weight matmuls (forward + backward; adaLN and the time MLP
run once per sequence and are left out) plus attention
``12 * depth * L^2 * width`` per sequence, plus the readout's ``6 * V * D * tokens``. The peak is a
large fp32 matmul timed on the same machine in the same run (bf16 on CUDA), so MFU is a ratio
measured side by side. Step time is the steady state (the first two steps, which carry warm-up and
``torch.compile``, are excluded; ``fit_wall_s`` keeps the whole fit); ``loader_share`` is the part of
it spent between steps (fetching the next batch); ``peak_memory_mb`` is CUDA's peak allocation, or
the process's peak resident memory on a CPU."""

from __future__ import annotations

import time
from typing import Callable

import torch
from hydra import compose, initialize_config_dir
from lightning.pytorch.callbacks import Callback

from textflow.bench.runner import time_call
from textflow.kernels.linear import onednn_available, onednn_linear


def peak_gemms(n: int = 2048, dtype=torch.float32, device: str = "cpu") -> dict[str, Callable[[], object]]:
    """One ``n``³ matmul per GEMM this machine offers, each ``2 n³`` FLOPs: PyTorch's own (``aten``; MKL's
    sgemm on an fp32 CPU) and, on an fp32 CPU with oneDNN, oneDNN's (``onednn``), which is the faster one on
    this project's CPUs (docs/benchmarks.md, "Sampling at the machine's limit")."""
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    gemms = {"aten": lambda: a @ b}
    if torch.device(device).type == "cpu" and dtype == torch.float32 and onednn_available():
        gemms["onednn"] = lambda: onednn_linear(a, b)  # a @ b.T: the same FLOPs on random operands
    return gemms


def matmul_peaks(n: int = 2048, dtype=torch.float32, device: str = "cpu") -> dict[str, float]:
    """FLOP/s of the best of 5 timed calls of each of :func:`peak_gemms`."""
    return {name: 2 * n**3 / time_call(gemm, warmup=2, repeats=5, desc=f"matmul peak ({name})")["min_s"]
            for name, gemm in peak_gemms(n, dtype, device).items()}


def fastest(peaks: dict[str, float]) -> tuple[str, float]:
    """The machine's matmul peak: the fastest GEMM of :func:`matmul_peaks`, as ``(name, FLOP/s)``."""
    name = max(peaks, key=peaks.get)
    return name, peaks[name]


def backbone_forward_flops(backbone, *, batch: int, seq_len: int) -> float:
    """FLOPs of one forward pass of the DiT: ``2 * N_matmul * tokens`` for the per-token weight matmuls
    (adaLN and the time MLP act once per sequence and are left out) plus attention's two L x L matmuls,
    ``4 * depth * L^2 * width`` per sequence. A flow map's two-time network counts its DiT (its gap MLP
    also acts once per sequence)."""
    backbone = getattr(backbone, "backbone", backbone)  # textflow.backbones.flow_map.FlowMapNetwork
    per_sequence = ("ada", "time_mlp")
    n_matmul = sum(p.numel() for name, p in backbone.named_parameters()
                   if p.dim() == 2 and not any(k in name for k in per_sequence))
    return 2 * n_matmul * batch * seq_len + attention_forward_flops(backbone, batch=batch, seq_len=seq_len)


def attention_forward_flops(backbone, *, batch: int, seq_len: int) -> float:
    """The part of :func:`backbone_forward_flops` in attention's two L x L matmuls:
    ``4 * depth * L^2 * width`` per sequence."""
    backbone = getattr(backbone, "backbone", backbone)
    return 4 * len(backbone.blocks) * seq_len**2 * backbone.width * batch


def readout_forward_flops(autoencoder, *, tokens: int) -> float:
    """FLOPs of one readout over ``tokens`` positions, as the autoencoder counts them
    (:meth:`textflow.autoencoders.LatentAutoencoder.readout_flops`: ``2 * V * D * tokens`` for a matmul
    readout; the one-hot readout is a scaling, ``V * tokens``)."""
    return autoencoder.readout_flops(tokens)


def model_flops_per_step(module, *, batch: int, seq_len: int) -> float:
    """Forward + backward (3x the forward) of the backbone and of the readout."""
    forward = backbone_forward_flops(module.net["backbone"], batch=batch, seq_len=seq_len)
    return 3 * (forward + readout_forward_flops(module.net["autoencoder"], tokens=batch * seq_len))


class StepClock(Callback):
    """Splits wall time into the model's steps and the gaps between them (fetching the next batch,
    moving it to the device, Lightning's bookkeeping): the data loader's share of step time."""

    def __init__(self, skip: int = 2):
        self.skip, self.step_s, self.gap_s, self._mark = skip, 0.0, 0.0, None

    def _now(self, module) -> float:
        if module.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        now = self._now(module)
        if self._mark is not None and batch_idx > self.skip:  # the first steps carry warm-up / compilation
            self.gap_s += now - self._mark
        self._mark = now

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        now = self._now(module)
        if batch_idx >= self.skip:
            self.step_s += now - self._mark
        self._mark = now


def peak_memory_mb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux: the process's peak RSS


def run(*, preset: str = "dit_small", steps: int = 30, batch: int = 64, seq_len: int = 64,
        conf_dir: str, cache_dir: str, overrides: list[str] = (), device: str = "cpu",
        precision: str = "32-true", compile: bool = False, devices: int = 1) -> list[dict]:
    """One row on the global rank (``devices`` > 1: Lightning DDP, gloo on a CPU; ``batch`` is per
    process and tokens/s counts every process); other ranks return no row."""
    import lightning as L

    from textflow.checkpoint import build_module

    with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
        cfg = compose("train", overrides=[f"backbone={preset}", f"data.seq_len={seq_len}", f"data.batch_size={batch}",
                                          f"dirs.cache_dir={cache_dir}", "dirs.output_dir=outputs/bench/train",
                                          "logger=none", "callbacks=none", f"module.compile={compile}",
                                          *overrides], return_hydra_config=False)
    from hydra.utils import instantiate

    dm = instantiate(cfg.data)
    tok = dm.setup_tokenizer()
    module = build_module(cfg, vocab_size=tok.vocab_size, seq_len=seq_len)
    bf16 = device == "cuda" and precision.startswith("bf16")
    peak_args = dict(n=8192 if device == "cuda" else 2048, dtype=torch.bfloat16 if bf16 else torch.float32,
                     device=device)
    peaks_before = matmul_peaks(**peak_args)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    clock = StepClock(skip=2 if steps > 4 else 0)
    trainer = L.Trainer(accelerator="gpu" if device == "cuda" else "cpu", devices=devices,
                        strategy="ddp" if devices > 1 else "auto", precision=precision,
                        max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, callbacks=[clock])
    start = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    elapsed = time.perf_counter() - start
    if not trainer.is_global_zero:
        return []
    # timed again after the run: a shared host whose speed drifts may have been slow for the first timing,
    # which would overstate the MFU; the faster of the two is the peak (docs/benchmarks.md, training)
    peaks_after = matmul_peaks(**peak_args)
    peak_kernel, peak = fastest({name: max(rate, peaks_after[name]) for name, rate in peaks_before.items()})
    timed = steps - clock.skip
    per_step = (clock.step_s + clock.gap_s) / timed  # steady state: warm-up and compilation excluded
    flops = model_flops_per_step(module, batch=batch, seq_len=seq_len)
    return [{"preset": preset, "device": device, "devices": devices, "precision": precision, "compile": compile,
             "batch": batch, "seq_len": seq_len, "steps": steps, "step_s": per_step, "fit_wall_s": elapsed,
             "tokens_per_s": devices * batch * seq_len / per_step, "model_tflop_per_step": devices * flops / 1e12,
             "peak_gflops": peak / 1e9, "peak_kernel": peak_kernel, "mfu": flops / per_step / peak,
             "peak_before_gflops": fastest(peaks_before)[1] / 1e9,
             "peak_after_gflops": fastest(peaks_after)[1] / 1e9,
             "loader_share": clock.gap_s / max(clock.step_s + clock.gap_s, 1e-9),
             "peak_memory_mb": peak_memory_mb(device)}]
