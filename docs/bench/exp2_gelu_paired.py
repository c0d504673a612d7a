"""The ``separate`` placement's tanh-GELU (``textflow.kernels.linear.tanh_gelu_``, the exp2 form) against
ATen's, eager and compiled, in one process, 2 threads, on the CPU this runs on (docs/benchmarks.md, "On the
AVX2 host, compiled"). Four copies of the checkpoint's denoiser, side by side:

- ``eager, ATen GELU`` and ``compiled, ATen GELU``: as before the exp2 form, the plain oneDNN GEMM and then
  ATen's tanh-GELU in place, one opaque op under ``torch.compile``;
- ``eager`` and ``compiled``: textflow as it is.

It prints the largest difference of each copy's backbone output to the first, then ``ode`` at K = 4
(batch 32) in rounds (``textflow.bench.runner.time_round_robin``) inside one packing block: the median
seconds per batch and the median per-round ratio to the same mode with ATen's GELU.

    python docs/bench/exp2_gelu_paired.py CKPT [ROUNDS]
"""

import statistics
import sys

import torch

from textflow.allocator import keep_freed_memory
from textflow.bench.runner import cpu_model, time_round_robin
from textflow.checkpoint import load_run
from textflow.kernels import linear as kl
from textflow.samplers import Sampler
from textflow.sampling.generate import generate


def aten_gelu_eager(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The plain oneDNN GEMM, then ATen's tanh-GELU in place: the ``separate`` placement before."""
    plain = kl._fused_op()(x.contiguous(), kl._packed(weight, x.numel() // x.shape[-1]), bias, "none", [], "")
    return torch.ops.aten.gelu_(plain, approximate="tanh")


@torch.library.custom_op("textflow_bench::linear_aten_gelu", mutates_args=())
def linear_aten_gelu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """:func:`aten_gelu_eager` as one op that a compiled graph calls without tracing into it."""
    return aten_gelu_eager(x, weight, bias)


@linear_aten_gelu.register_fake
def _(x, weight, bias):
    return x.new_empty(*x.shape[:-1], weight.shape[0])


class AtenGeluMLP(kl.GeluMLP):
    def forward(self, x):
        up, _, down = self
        if kl._inference_backend(x, up.weight, up.bias) == "onednn":
            hidden = (linear_aten_gelu if torch.compiler.is_compiling() else aten_gelu_eager)(x, up.weight, up.bias)
        else:
            hidden = kl.linear(x, up.weight, up.bias, gelu=True)
        return kl.linear(hidden, down.weight, down.bias)


keep_freed_memory()
torch.set_num_threads(2)
ckpt, rounds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 9
print(f"{cpu_model()} ({torch.backends.cpu.get_cpu_capability()}), torch {torch.__version__}, "
      f"GELU placement here: {kl.cpu_gelu_placement()}")
copies = {}
for name in ("eager, ATen GELU", "eager", "compiled, ATen GELU", "compiled"):
    loaded = load_run(ckpt)
    den = loaded.denoiser()
    if "ATen" in name:
        for module in den.backbone.modules():
            if isinstance(module, kl.GeluMLP):
                module.__class__ = AtenGeluMLP
    if name.startswith("compiled"):
        den.backbone.compile()
    copies[name] = den
seq_len = int(loaded.info["seq_len"])
gen = torch.Generator().manual_seed(0)
z, t = torch.randn(32, seq_len, den.backbone.latent_dim, generator=gen), torch.rand(32, generator=gen)
sampler = Sampler(name="ode", steps=4)
with torch.no_grad(), kl.reuse_packed_weights():
    outs = {name: den.backbone(z, t) for name, den in copies.items()}
    first = next(iter(outs.values()))
    for name, out in outs.items():
        print(f"{name}: largest difference to eager with ATen's GELU {(out - first).abs().max():.2e}")

    def batch(den):
        return lambda: generate(den, sampler, num_samples=32, seq_len=seq_len, seed=0, batch_size=32)

    timed = time_round_robin({name: batch(den) for name, den in copies.items()}, warmup=2, repeats=rounds,
                             desc="ode K=4", keep_times=True)
for name, row in timed.items():
    before = timed[name.split(",")[0] + ", ATen GELU"]["times_s"]
    ratio = statistics.median(a / b for a, b in zip(row["times_s"], before, strict=True))
    print(f"ode K=4 batch 32, {name}: median {row['median_s']:.3f} s, per round vs ATen's GELU {ratio:.3f}")
