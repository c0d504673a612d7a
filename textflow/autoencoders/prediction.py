"""What the backbone's raw output means and how it is trained: the prediction head an autoencoder names
(docs/autoencoders.md, "The one-hot latent space").

One object, used in three places (:class:`textflow.denoiser.FlowDenoiser`, the flow-matching loss of
:mod:`textflow.objectives.flow_matching` with its self-conditioning first pass, and so validation):

* :data:`MSE` (every autoencoder that names none): the output is the path's parameterisation,
  ``x_hat = path.to_x_hat(output, z, t)``, regressed onto ``path.target`` by mean squared error;
* :class:`SoftmaxPrediction` (``autoencoder=onehot``; FLM, arXiv 2602.16813): the output is V logits,
  ``x_hat = scale * softmax(logits)``, trained by the cross-entropy of those logits against the clean
  token (the target ``x`` divided by ``scale`` is the one-hot distribution). It needs x-prediction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textflow.errors import ConfigError
from textflow.kernels.cross_entropy import linear_cross_entropy
from textflow.types import Latents, OneHotLatents


def free_position_mse(pred: Tensor, target: Tensor, given: Tensor | None = None) -> Tensor:
    """Mean squared error over the free positions (all of them when ``given`` is None: exactly
    ``F.mse_loss``)."""
    if given is None:
        return F.mse_loss(pred.float(), target.float())
    per_token = (pred.float() - target.float()).pow(2).mean(-1)
    return free_position_mean(per_token, given)


def free_position_mean(per_token: Tensor, given: Tensor | None = None) -> Tensor:
    """Mean of a (B, L) per-token loss over the positions not in ``given`` (all when it is None)."""
    if given is None:
        return per_token.mean()
    free = ~given
    return (per_token * free).sum() / free.sum().clamp_min(1)


class MSEPrediction:
    """The default head: the output is what the path predicts, trained by MSE (today's behaviour)."""

    name = "mse"

    def check(self, path, *, scale_tokens: int = 0) -> None:
        """Every path and every backbone variant works with the plain output."""

    def to_x_hat(self, output: Tensor, path, z: Tensor, t: Tensor) -> Tensor:
        """``path.to_x_hat(output, z, t)``."""
        return path.to_x_hat(output, z, t)

    def loss(self, output: Tensor, target: Tensor, given: Tensor | None = None) -> Tensor:
        """``|| output - target ||^2`` over the free positions."""
        return free_position_mse(output, target, given)


MSE = MSEPrediction()


class SoftmaxPrediction:
    """FLM's head (arXiv 2602.16813): the backbone outputs V logits, ``x_hat = scale * softmax(logits)``,
    and the loss is the cross-entropy of the logits against the target distribution ``x / scale`` (the
    clean one-hot token, so exactly the token cross-entropy).

    Args:
        scale: the one-hot latents' scale (clean latent ``x = scale * one_hot(id)``).
    """

    name = "softmax"

    def __init__(self, *, scale: float):
        self.scale = float(scale)

    def check(self, path, *, scale_tokens: int = 0) -> None:
        """Refuse a path that does not predict clean data, and scale tokens (their learned guidance
        regresses onto a combination of outputs, which a cross-entropy cannot express)."""
        if path.prediction != "x":
            raise ConfigError(f"path.prediction={path.prediction!r} is invalid for the one-hot latent space, whose "
                              f"softmax head predicts clean data; use path=linear (prediction 'x')")
        if scale_tokens:
            raise ConfigError(f"backbone.scale_tokens={scale_tokens} is invalid for the one-hot latent space (its "
                              f"cross-entropy cannot learn the guided target); use backbone.scale_tokens=0")

    def to_x_hat(self, output: Tensor, path, z: Tensor, t: Tensor) -> Tensor:
        """``scale * softmax(output)`` (an x-prediction, so ``path.to_x_hat`` leaves it as it is). At FLM's
        scale 1 the product is the softmax itself, so it is skipped: one pass over (B, L, V) fewer a call."""
        probs = torch.softmax(output.float(), dim=-1)
        return path.to_x_hat(probs if self.scale == 1.0 else self.scale * probs, z, t)

    def loss(self, output: Tensor, target: Tensor, given: Tensor | None = None) -> Tensor:
        """Mean over the free positions of ``-sum_v (target_v / scale) log softmax(output)_v``."""
        logits = output.float().flatten(0, -2)
        probs = (target.float() / self.scale).flatten(0, -2)
        per_token = F.cross_entropy(logits, probs, reduction="none").view(output.shape[:-1])
        return free_position_mean(per_token, given)

    def feature_loss(self, features: Tensor, head: nn.Linear, target: Latents,
                     given: Tensor | None = None) -> Tensor:
        """:meth:`loss` of ``output = head(features)`` for a one-hot ``target`` (the flow-matching target,
        ``x = scale * one_hot(token)``), without the (B, L, V) logits: the cross-entropy against a one-hot
        distribution is the token's, which :func:`textflow.kernels.linear_cross_entropy` scores from the
        (B, L, W) ``features`` and the (V, W) ``head`` in cache-sized tiles (docs/benchmarks.md, "Large
        vocabularies"). Equal to :meth:`loss` up to float32 rounding (tests/test_onehot.py). A target held as
        its ids (:class:`~textflow.types.OneHotLatents`) gives them directly; a dense one by its argmax."""
        tokens = target.ids if isinstance(target, OneHotLatents) else target.argmax(-1)
        if given is not None:
            free = ~given
            if not bool(free.any()):  # nothing to score: the mean over no position is 0, as in :meth:`loss`
                return features.sum() * 0.0
            features, tokens = features[free], tokens[free]
        return linear_cross_entropy(features, head.weight, head.bias, tokens)[0]


def prediction_of(autoencoder) -> MSEPrediction | SoftmaxPrediction:
    """The head ``autoencoder`` names in its ``prediction`` attribute, :data:`MSE` when it names none."""
    return getattr(autoencoder, "prediction", None) or MSE
