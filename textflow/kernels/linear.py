"""Inference linears on a CPU through oneDNN, with the MLP's tanh-GELU fused into its first matmul
(docs/benchmarks.md, "Sampling at the machine's limit").

On this project's 2-core CPU, PyTorch's fp32 ``F.linear`` runs MKL's sgemm and then, as a separate pass,
the GELU; oneDNN's fp32 GEMM is 10-20 % faster at the DiT's shapes (its 2048³ matmul reaches about
217 GFLOP/s against MKL's 180) and applies the bias and the GELU while the output tile is still in cache.
:func:`linear` takes that path when nothing needs a gradient (sampling, validation, ``torch.no_grad``),
on a float32 CPU tensor, outside CPU autocast, and when the matmul is large enough (``MIN_MACS``) that
oneDNN's fixed cost of about 15 µs per call is paid back. Everything else, training included, runs
``F.linear`` exactly as before. Under ``torch.compile`` the same matmul is one opaque custom op,
``textflow::onednn_linear``: inductor fuses the elementwise passes around it (LayerNorm, modulation,
residuals) and calls it for the GEMM, where its own CPU GEMM would be PyTorch's. In the ``separate``
GELU placement (below) the op is the plain GEMM and the GELU is part of the graph, written as
:func:`tanh_gelu_`, whose inductor code needs a base-2 exponential instead of a tanh.
Whether a linear takes the op is decided when the graph is traced.

Every linear of the DiT (and a flow map's gap MLP), the transformer VAE, the latent AR decoder and the
causal LM (the AR twin) is a :class:`Linear`, and their MLPs are :class:`GeluMLP`; the chunked readout
kernels of :mod:`textflow.kernels` read the heads' weights directly.

Inside :func:`reuse_packed_weights` (every :func:`textflow.sampling.generate.generate` call and the causal
LM's decoding enter it) each weight is reordered once into oneDNN's blocked layout, at its first oneDNN
matmul, and the reordered copy serves every later call in the block; outside it oneDNN reorders the
plain weight on every call, which at the DiT's shapes costs 5-8 % of the GEMM. The cache is keyed by the
parameter, its storage and its version counter (an in-place update repacks) and is dropped when the
block ends, so weights that change between blocks (training) are never read stale.

Where the GELU goes is a per-CPU choice (``GELU_PLACEMENTS``): ``fused`` applies it as oneDNN's post-op
(the faster choice measured on the AVX-512 host), ``separate`` runs the plain oneDNN GEMM and then
:func:`tanh_gelu_` in place. On the AVX2 host oneDNN's tanh post-op is the slow part: a (2048 x 256) @
(256 x 1024) linear took 16.4 ms fused against 12.9 ms as the plain GEMM and ATen's GELU (``python
docs/bench/gelu_placement_paired.py``; docs/benchmarks.md, "On the AVX2 host, with the target's model"),
and :func:`tanh_gelu_` is cheaper than ATen's GELU there. The default, ``auto``, is measured once per
machine with the backend below (:func:`cpu_gelu_placement`, :mod:`textflow.kernels.calibration`; a near
tie keeps ``fused`` where ATen reports an AVX-512 capability and ``separate`` elsewhere);
``TEXTFLOW_CPU_GELU`` or :func:`use_cpu_gelu` picks one. Both agree with ATen's GELU to float32 rounding.

A second inference path, ``mkl``, keeps PyTorch's own GEMM (MKL in the CPU wheels) and runs the GELU as
:func:`tanh_gelu_` in place on its output, eager and compiled. Which of ``onednn`` and ``mkl`` is faster
depends on the CPU: on one AVX2 host a K = 4 ``ode`` batch took 10 % less time on ``mkl``
(docs/benchmarks.md, "Sampling at the machine's limit", tenth block); on the AVX-512 host oneDNN's GEMM
was the faster. The default, ``auto``, takes the answer measured once per machine and stored in the cache
folder (:mod:`textflow.kernels.calibration`).

The paths agree to float32 rounding (a different summation order; the test suite checks ``allclose``),
not bit for bit. ``TEXTFLOW_CPU_LINEAR`` (``auto``, ``onednn``, ``mkl`` or ``aten``) in the environment, or
:func:`use_cpu_linear`, selects one; ``aten`` is PyTorch's own kernels and ATen's GELU, which reproduce
samples drawn before these paths existed exactly.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Callable, ContextManager, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textflow.errors import ConfigError
from textflow.kernels import calibration

BACKENDS = ("onednn", "mkl", "aten")
AUTO = "auto"  # the default of TEXTFLOW_CPU_LINEAR and TEXTFLOW_CPU_GELU: measured (calibration.py)
GELU_PLACEMENTS = ("fused", "separate")
MIN_MACS = 1 << 22  # rows x in x out below this: oneDNN's per-call overhead outweighs its faster GEMM
_state = {"backend": None, "gelu": None, "available": None, "packable": None, "packed": None}


def _check(name: str, source: str, choices: tuple[str, ...], kind: str) -> str:
    if name not in choices:
        raise ConfigError(f"{source}={name!r} is not a {kind}; choose one of {', '.join(choices)}")
    return name


def _setting(key: str, env: str, choices: tuple[str, ...], kind: str, measured: Callable[[], str]) -> str:
    """The ``_state[key]`` setting, read once from the environment variable ``env``; its default, ``auto``,
    is ``measured()``, this machine's answer from :mod:`textflow.kernels.calibration`."""
    if _state[key] is None:
        name = _check(os.environ.get(env, AUTO), env, (AUTO, *choices), kind)
        _state[key] = measured() if name == AUTO else name
    return _state[key]


@contextlib.contextmanager
def _overridden(key: str, name: str | None, current: str, choices: tuple[str, ...], kind: str,
                source: str) -> Iterator[None]:
    """The block runs with ``_state[key] = name`` (None: ``current``, as it is), restored afterwards."""
    _state[key] = current if name is None else _check(name, source, choices, kind)
    try:
        yield
    finally:
        _state[key] = current


@torch.compiler.assume_constant_result
def cpu_linear_backend() -> str:
    """The backend in force: :func:`use_cpu_linear`'s, else ``TEXTFLOW_CPU_LINEAR``, else (``auto``) the
    one :func:`textflow.kernels.calibration.calibrated_cpu_backend` measured as the faster on this machine."""
    return _setting("backend", "TEXTFLOW_CPU_LINEAR", BACKENDS, "CPU linear backend",
                    calibration.calibrated_cpu_backend)


def use_cpu_linear(name: str | None) -> ContextManager[None]:
    """Run the block with CPU inference linears on ``name`` (``onednn``, ``mkl`` or ``aten``; None: as
    they are)."""
    # the setting as it is, unresolved: naming a backend must not start the calibration of the default
    return _overridden("backend", name, _state["backend"], BACKENDS, "CPU linear backend", "use_cpu_linear")


@torch.compiler.assume_constant_result
def cpu_gelu_placement() -> str:
    """Where the oneDNN path applies the MLP's GELU: :func:`use_cpu_gelu`'s choice, else
    ``TEXTFLOW_CPU_GELU``, else (``auto``) the placement
    :func:`textflow.kernels.calibration.calibrated_gelu_placement` measured as the faster on this machine."""
    return _setting("gelu", "TEXTFLOW_CPU_GELU", GELU_PLACEMENTS, "GELU placement",
                    calibration.calibrated_gelu_placement)


def use_cpu_gelu(name: str | None) -> ContextManager[None]:
    """Run the block with the oneDNN path's GELU ``fused`` or ``separate`` (None: as it is)."""
    # the setting as it is, unresolved: naming a placement must not start the calibration of the default
    return _overridden("gelu", name, _state["gelu"], GELU_PLACEMENTS, "GELU placement", "use_cpu_gelu")


def _fused_op():
    return torch.ops.mkldnn._linear_pointwise


def _reorder(weight: Tensor, rows: int) -> Tensor:
    """``weight`` (out, in) in oneDNN's blocked layout, chosen for matmuls of about ``rows`` rows."""
    return torch.ops.mkldnn._reorder_linear_weight(weight, rows)


@torch.compiler.assume_constant_result  # traced by torch.compile: run once, as a constant of the graph
def onednn_available() -> bool:
    """True when this torch build has oneDNN's fused linear and it agrees with ``F.linear`` on a probe.

    Checked once per process. The op is the one inductor's CPU backend emits for fused linears; a build
    without it, or one whose results disagree, falls back to ``F.linear`` everywhere."""
    if _state["available"] is None:
        _state["available"] = _probe()
    return _state["available"]


@contextlib.contextmanager
def reuse_packed_weights() -> Iterator[None]:
    """Within the block, reuse each parameter's oneDNN-reordered weight (module docstring). Nests: an inner
    block shares the outer block's cache."""
    if _state["packed"] is not None:
        yield
        return
    _state["packed"] = {}
    try:
        yield
    finally:
        _state["packed"] = None


def _packed(weight: Tensor, rows: int) -> Tensor:
    """``weight`` in oneDNN's blocked layout for matmuls of about ``rows`` rows, from the block's cache;
    ``weight`` itself outside :func:`reuse_packed_weights`, for non-parameters and where it cannot pack."""
    cache = _state["packed"]
    if cache is None or not isinstance(weight, nn.Parameter) or not _state["packable"]:
        return weight
    key = (weight.data_ptr(), weight._version)
    hit = cache.get(id(weight))
    if hit is None or hit[1] != key:  # the entry holds the parameter, so its id is not reused in the block
        hit = cache[id(weight)] = (weight, key, _reorder(weight.detach(), rows))
    return hit[2]


def _probe() -> bool:
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(4, 16, 64, generator=gen)
        w, b = torch.randn(96, 64, generator=gen) / 8, torch.randn(96, generator=gen)
        with torch.no_grad():
            plain = _fused_op()(x, w, b, "none", [], "")
            gelu = _fused_op()(x, w, b, "gelu", [], "tanh")
        want = F.linear(x, w, b)
        ok = (torch.allclose(plain, want, rtol=1e-4, atol=1e-5)
              and torch.allclose(gelu, F.gelu(want, approximate="tanh"), rtol=1e-4, atol=1e-5))
    except (RuntimeError, AttributeError):
        return False
    _state["packable"] = ok and _probe_packing(x, w, b, plain)
    return ok


def _probe_packing(x: Tensor, w: Tensor, b: Tensor, want: Tensor) -> bool:
    try:
        with torch.no_grad():
            got = _fused_op()(x, _reorder(w, x.shape[0] * x.shape[1]), b, "none", [], "")
        return torch.allclose(got, want, rtol=1e-5, atol=1e-6)
    except (RuntimeError, AttributeError):
        return False


def _inference_backend(x: Tensor, weight: Tensor, bias: Tensor | None) -> str:
    """``onednn`` or ``mkl`` where :func:`linear` takes textflow's inference path (module docstring),
    ``aten`` where it runs PyTorch's own kernels."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or weight.dtype != torch.float32:
        return "aten"
    if bias is not None and bias.dtype != torch.float32:
        return "aten"
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                    or (bias is not None and bias.requires_grad)):
        return "aten"
    if x.numel() * weight.shape[0] < MIN_MACS:  # rows x in x out
        return "aten"
    if torch.is_autocast_enabled("cpu"):
        return "aten"
    backend = cpu_linear_backend()
    return "aten" if backend == "onednn" and not onednn_available() else backend


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None, *, gelu: bool = False) -> Tensor:
    """``F.linear(x, weight, bias)``, followed by the tanh-approximate GELU when ``gelu``; through oneDNN
    with the bias and GELU fused, or PyTorch's GEMM with :func:`tanh_gelu_` in place, where the module
    docstring says, through ``F.linear`` and ATen's GELU elsewhere."""
    return linear_on(_inference_backend(x, weight, bias), x, weight, bias, gelu=gelu)


def linear_on(backend: str, x: Tensor, weight: Tensor, bias: Tensor | None = None, *,
              gelu: bool = False, placement: str | None = None) -> Tensor:
    """:func:`linear` on the named backend, whatever the inputs (``onednn`` and ``mkl`` only where nothing
    needs a gradient: their GELU overwrites the GEMM's output); ``placement`` names the ``onednn`` path's
    GELU placement (None: :func:`cpu_gelu_placement`)."""
    if backend == "mkl":
        out = F.linear(x, weight, bias)
        return tanh_gelu_(out) if gelu else out
    if backend == "onednn":
        if not torch.compiler.is_compiling():
            return _onednn(x, weight, bias, gelu, placement)
        if gelu and (placement or cpu_gelu_placement()) == "separate":
            return tanh_gelu_(onednn_linear_op(x, weight, bias, False))
        return onednn_linear_op(x, weight, bias, gelu)
    out = F.linear(x, weight, bias)
    return F.gelu(out, approximate="tanh") if gelu else out


# 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)) = x / (1 + 2^(-2u log2 e)), u = sqrt(2/pi) (x + 0.044715 x^3)
_GELU_EXP2_SLOPE = -2 * math.sqrt(2 / math.pi) / math.log(2)


def tanh_gelu_(x: Tensor) -> Tensor:
    """The tanh-approximate GELU of ``x``, in place: ``0.5 x (1 + tanh(u))`` written as the equal
    ``x / (1 + 2^(-2u log2 e))``, the ``separate`` placement's GELU, eager and compiled.

    Eager it is five passes of ATen's cheapest ops (one ``addcmul``, a product, ``exp2``, an add and a
    division into ``x``); ATen's own tanh-GELU is one pass, but its tanh costs more than the five on the
    AVX2 host: 2.7 against 4.2-4.4 ms over the MLP's (2048 x 1024) hidden layer (``python
    docs/bench/compiled_forward_probes.py``). Compiled, inductor makes the five one loop with one ``exp2``
    (1.3-1.4 ms), where its code for ATen's GELU evaluates a tanh; a compiled ``ode`` batch took 7-8 % less
    time that way (``python docs/bench/exp2_gelu_paired.py CKPT``; docs/benchmarks.md, "On the AVX2 host,
    compiled"). Agrees with ATen's GELU to float32 rounding (tests/test_cpu_linear.py)."""
    u = torch.addcmul(x.new_full((), _GELU_EXP2_SLOPE), x, x, value=_GELU_EXP2_SLOPE * 0.044715)
    return x.div_(u.mul_(x).exp2_().add_(1))


def _onednn(x: Tensor, weight: Tensor, bias: Tensor | None, gelu: bool,
            placement: str | None = None) -> Tensor:
    packed = _packed(weight, x.numel() // x.shape[-1])
    weight = packed if packed is not weight else weight.contiguous()
    if gelu and (placement or cpu_gelu_placement()) == "separate":
        return tanh_gelu_(_fused_op()(x.contiguous(), weight, bias, "none", [], ""))
    return _fused_op()(x.contiguous(), weight, bias, "gelu" if gelu else "none", [], "tanh" if gelu else "")


# :func:`linear`'s oneDNN path as one op, ``textflow::onednn_linear``, that ``torch.compile`` calls without
# tracing into it (module docstring); packed weights come from the :func:`reuse_packed_weights` block it runs
# in. Registered with the dispatcher's CPU key alone: ``torch.library.custom_op`` would also wrap it for
# autograd, which it never needs (it runs only where nothing needs a gradient): on the AVX2 host a call
# cost about 50 µs more than the function it wraps that way, 17 µs this way (``python
# docs/bench/compiled_forward_probes.py``; docs/benchmarks.md, "On the AVX2 host, compiled").
_LIBRARY = torch.library.Library("textflow", "DEF")
_LIBRARY.define("onednn_linear(Tensor x, Tensor weight, Tensor? bias, bool gelu) -> Tensor")
_LIBRARY.impl("onednn_linear", _onednn, "CPU")
onednn_linear_op = torch.ops.textflow.onednn_linear.default


@torch.library.register_fake("textflow::onednn_linear")
def _(x: Tensor, weight: Tensor, bias: Tensor | None, gelu: bool) -> Tensor:
    return x.new_empty(*x.shape[:-1], weight.shape[0])


def onednn_linear(x: Tensor, weight: Tensor) -> Tensor:
    """``F.linear(x, weight)`` on float32 CPU tensors through oneDNN's GEMM, whatever the size and backend
    (the benchmarks time it as the machine's matmul peak beside PyTorch's own)."""
    return _fused_op()(x, weight, None, "none", [], "")


class Linear(nn.Linear):
    """``nn.Linear`` whose forward is :func:`linear` (same parameters and state-dict keys)."""

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)


class GeluMLP(nn.Sequential):
    """The transformer MLP, ``Linear -> tanh-GELU -> Linear``, with the GELU fused into the first matmul
    by :func:`linear`. An ``nn.Sequential`` so its state-dict keys stay ``0.weight``, ``2.weight``, ..."""

    def __init__(self, width: int, hidden: int):
        super().__init__(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))

    def forward(self, x: Tensor) -> Tensor:
        up, _, down = self
        return linear(linear(x, up.weight, up.bias, gelu=True), down.weight, down.bias)
