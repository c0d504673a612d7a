"""The two-time network of a flow-map student (docs/samplers.md, "Flow-map students").

A flow map ``X(z_s, s, t)`` jumps from ``z_s`` at time ``s`` to ``z_t`` in one call (Boffi, Albergo &
Vanden-Eijnden 2025, "How to build a consistency model: learning flow maps via self-distillation",
arXiv 2505.18825; FMLM, arXiv 2602.16813, distils text flows this way). :class:`FlowMapNetwork` is a
copy of the teacher's DiT that also reads the target time: the gap ``t - s`` goes through its own
sinusoidal features and MLP and is added to the DiT's time condition (``DiT.forward(time_offset=)``,
FMLM's "double time embedding"). The MLP's last layer starts at zero, so an untrained student is its
teacher exactly: its output at any ``(s, t)`` is the teacher's at ``s``.

The output is the teacher's parameterisation read at ``s`` (an ``x_hat`` on an x-prediction path);
:class:`textflow.denoiser.FlowDenoiser` (``jumps``) turns it into the jump: the Euler step from ``s``
to ``t`` with that ``x_hat`` lands on ``X(z_s, s, t)`` (the mean-velocity parameterisation: at
``t = s`` it is the instantaneous velocity, so the teacher anchors the diagonal).
"""

from __future__ import annotations

from torch import Tensor, nn

from textflow.backbones.dit import DiT, timestep_embedding
from textflow.errors import ConfigError
from textflow.kernels.linear import Linear


class FlowMapNetwork(nn.Module):
    """``forward(z (B, L, D), s (B,), t (B,)) -> (B, L, D)``, the teacher's output format at time ``s``.

    Args:
        backbone: the teacher's DiT (a copy, trained further; its state-dict keys keep the ``backbone.``
            prefix). Self-conditioned and scale-token DiTs are refused: a flow map of them needs
            ``x_prev`` carried between jumps, which is not built.
    """

    two_times = True  # FlowDenoiser passes the step's target time (textflow.denoiser: ``jumps``)

    def __init__(self, *, backbone: DiT):
        super().__init__()
        if not isinstance(backbone, DiT):
            raise ConfigError(f"a flow-map student needs a DiT teacher; got {type(backbone).__name__}")
        if backbone.self_condition or backbone.scale_tokens:
            raise ConfigError("a flow-map student of a self-conditioned teacher (backbone.self_condition=true) is not "
                              "supported; distill it with stage=distill (progressive) instead")
        self.backbone = backbone
        width = backbone.width
        self.gap_mlp = nn.Sequential(Linear(width, width), nn.SiLU(), Linear(width, width))
        nn.init.zeros_(self.gap_mlp[-1].weight)
        nn.init.zeros_(self.gap_mlp[-1].bias)

    @property
    def latent_dim(self) -> int:
        return self.backbone.latent_dim

    def forward(self, z: Tensor, s: Tensor, t: Tensor) -> Tensor:
        if s.dim() != 1 or t.shape != s.shape:
            raise ValueError(f"a flow map takes one start and one target time per row, got s {tuple(s.shape)} and "
                             f"t {tuple(t.shape)}")
        gap = self.gap_mlp(timestep_embedding(t - s, self.backbone.width).to(z.dtype))
        return self.backbone(z, s, time_offset=gap)
