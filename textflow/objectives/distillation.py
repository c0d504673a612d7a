"""The two-half-step target shared by the distillation stages (docs/samplers.md, "Progressive
distillation" and "Flow-map students").

A student step ``t_s -> t_t`` is regressed onto the ``x_hat*`` that one Euler step would need to land
where two half steps of a reference land. On the linear path

    x_hat* = z_s + ((1 - t_s) / (t_t - t_s)) (z_t - z_s)

(``ProbPath.x_hat_for_velocity`` in general; on an interval ending at ``t = 1`` the target is the
reference's final ``x_hat`` itself, as every sampler's last step returns). The reference is the teacher's
Euler sub-steps for progressive distillation (Salimans & Ho 2022, arXiv 2202.00512, Alg. 2), or the
student's own two jumps for a flow map's semigroup condition ``X(s, t) = X(u, t) o X(s, u)`` (Boffi et al.
2025, arXiv 2505.18825): :func:`textflow.samplers.steps.predict` asks a jumping denoiser for the jump.
"""

from __future__ import annotations

import torch
from torch import Tensor

from textflow.paths import expand_time
from textflow.samplers.steps import euler_update, predict


@torch.no_grad()
def two_step_target(reference, z_s: Tensor, t_s: Tensor, t_t: Tensor) -> Tensor:
    """``x_hat*`` for a step ``t_s -> t_t`` (B,) from two half steps of ``reference`` (module docstring)."""
    t_mid = 0.5 * (t_s + t_t)
    z_mid = euler_update(reference, z_s, predict(reference, z_s, t_s, t_mid), t_s, t_mid)
    x_hat_mid = predict(reference, z_mid, t_mid, t_t)
    final = expand_time(t_t >= 1.0, z_s)
    z_t = torch.where(final, x_hat_mid, euler_update(reference, z_mid, x_hat_mid, t_mid, t_t))
    v = (z_t - z_s) / expand_time(t_t - t_s, z_s)
    return torch.where(final, z_t, reference.path.x_hat_for_velocity(v, z_s, t_s))
