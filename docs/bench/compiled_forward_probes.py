"""The probes behind the ninth block of docs/benchmarks.md ("On the AVX2 host, compiled"), 2 threads, on the
CPU this runs on, with a `dit_small`-shaped DiT (width 256, depth 4, latent 64) at batch 32 x 64 and random
weights (the time of a forward does not depend on their values):

1. the tanh-GELU over the MLP's (2048 x 1024) hidden layer: ATen's, inductor's code for ATen's, and
   ``textflow.kernels.linear.tanh_gelu_`` eager and compiled (best and median ms of 40 calls);
2. ``torch.profiler`` of the compiled forward: where its time goes, and the rate of its linears against the
   square-matmul peak timed just after;
3. the compiled forward with SDPA against math attention (two batched matmuls and a softmax), two
   compiled copies in rounds: the median per-round ratio;
4. the cost of calling the ``textflow::onednn_linear`` custom op against the function it wraps, per call,
   on a matmul of 8 rows (where the GEMM itself is nearly free).

    python docs/bench/compiled_forward_probes.py
"""

import copy
import statistics
import time

import torch
import torch.nn.functional as F
from einops import rearrange
from torch.profiler import ProfilerActivity, profile

from textflow.allocator import keep_freed_memory
from textflow.backbones import DiT
from textflow.backbones.dit import Attention
from textflow.bench.runner import cpu_model, seconds, time_round_robin
from textflow.bench.train import attention_forward_flops, backbone_forward_flops, peak_gemms
from textflow.kernels import linear as kl

keep_freed_memory()
torch.set_num_threads(2)
print(f"{cpu_model()} ({torch.backends.cpu.get_cpu_capability()}), torch {torch.__version__}, "
      f"GELU placement here: {kl.cpu_gelu_placement()}")


def ms(fn, n=40):
    times = [seconds(fn) for _ in range(n)]
    return min(times) * 1e3, statistics.median(times) * 1e3


# 1. the GELU alone; in place on fresh copies, so every call reads a layer that is not in the cache
hidden = torch.randn(2048, 1024, generator=torch.Generator().manual_seed(0)) * 2
compiled_aten = torch.compile(lambda x: F.gelu(x, approximate="tanh"))
compiled_exp2 = torch.compile(kl.tanh_gelu_)
for name, fn in (("ATen, in place", lambda x: torch.ops.aten.gelu_(x, approximate="tanh")),
                 ("inductor's code for ATen's", compiled_aten), ("tanh_gelu_, eager", kl.tanh_gelu_),
                 ("tanh_gelu_, compiled", compiled_exp2)):
    fn(hidden.clone())
    copies = iter([hidden.clone() for _ in range(40)])
    best, median = ms(lambda fn=fn: fn(next(copies)))
    print(f"tanh-GELU over (2048 x 1024), {name}: best {best:.2f} ms, median {median:.2f} ms")


class MathAttention(Attention):
    def forward(self, x):
        q, k, v = self.qkv(x).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4).unbind(0)
        weights = torch.softmax((q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2), dim=-1)
        return self.proj(rearrange(weights @ v, "b h l d -> b l (h d)"))


torch.manual_seed(0)
model = DiT(latent_dim=64, max_len=64, width=256, depth=4, heads=4).eval()
for p in model.parameters():  # adaLN-Zero starts as the identity: give every weight a value
    torch.nn.init.normal_(p, std=0.02)
math_model = copy.deepcopy(model)
for module in math_model.modules():
    if isinstance(module, Attention):
        module.__class__ = MathAttention
z, t = torch.randn(32, 64, 64), torch.rand(32)
sdpa, math = torch.compile(model), torch.compile(math_model)
with torch.no_grad(), kl.reuse_packed_weights():
    for _ in range(3):
        sdpa(z, t), math(z, t)
    # 2. the profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(10):
            sdpa(z, t)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))
    linear_s = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key == "mkldnn::_linear_pointwise") / 1e7
    matmul_flops = (backbone_forward_flops(model, batch=32, seq_len=64)
                    - attention_forward_flops(model, batch=32, seq_len=64))
    peak = max(2 * 2048**3 / min(seconds(gemm) for _ in range(5)) for gemm in peak_gemms(2048).values())
    print(f"linears: {matmul_flops / 1e9:.2f} GFLOP in {linear_s * 1e3:.1f} ms a forward, "
          f"{matmul_flops / linear_s / 1e9:.0f} GFLOP/s; square-matmul peak just after: {peak / 1e9:.0f} GFLOP/s")
    # 3. SDPA against math attention, compiled
    print(f"largest difference, math attention against SDPA: {(math(z, t) - sdpa(z, t)).abs().max():.2e}")
    timed = time_round_robin({"sdpa": lambda: sdpa(z, t), "math": lambda: math(z, t)}, warmup=2, repeats=21,
                             desc="attention", keep_times=True)
    ratio = statistics.median(a / b for a, b in zip(timed["math"]["times_s"], timed["sdpa"]["times_s"]))
    print(f"compiled forward: SDPA median {timed['sdpa']['median_s'] * 1e3:.1f} ms, math attention median "
          f"{timed['math']['median_s'] * 1e3:.1f} ms, per round math / SDPA {ratio:.3f}")
    # 4. the custom op's own cost
    x, w, b = torch.randn(8, 256), torch.nn.Parameter(torch.randn(256, 256)), torch.nn.Parameter(torch.randn(256))
    calls = {"function": lambda: kl._onednn(x, w, b, False), "custom op": lambda: kl.onednn_linear_op(x, w, b, False)}
    per_call = {}
    for name, fn in calls.items():
        for _ in range(50):
            fn()
        start = time.perf_counter()
        for _ in range(2000):
            fn()
        per_call[name] = (time.perf_counter() - start) / 2000 * 1e6
    print(f"(8 x 256) @ (256 x 256) through oneDNN: the function {per_call['function']:.1f} µs, the custom op "
          f"{per_call['custom op']:.1f} µs a call")
