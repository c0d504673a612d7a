"""Diagnostics of a sampler's own trajectory (consumes the per-step ``StepRecord`` stream).

Per step: the time, ``s(t)``, the fraction of tokens whose decode of ``x_hat`` changed since the
previous step (the realised flip rate along the trajectory), and, for committing samplers, the
fraction committed so far (the commit curve behind CCI).
"""

from __future__ import annotations

import torch

from textflow.types import StepRecord


class TrajectoryRecorder:
    """A sampler ``callback`` that accumulates per-step statistics over every batch it sees."""

    def __init__(self, path):
        self.path = path
        self._previous: torch.Tensor | None = None
        self._sums: dict[int, dict] = {}

    def __call__(self, record: StepRecord) -> None:
        tokens = record.logits().argmax(-1)
        if record.i == 0:
            self._previous = None
        row = self._sums.setdefault(record.i, {"t": 0.0, "change": 0.0, "committed": 0.0, "n": 0})
        n = tokens.shape[0]
        t_mean = float(record.t.float().mean())
        row["t"] += t_mean * n
        if self._previous is not None and self._previous.shape == tokens.shape:
            row["change"] += float((tokens != self._previous).float().mean()) * n
        if "committed" in record.extras:
            row["committed"] += float(record.extras["committed"].float().mean()) * n
        row["n"] += n
        self._previous = tokens

    def curve(self) -> list[dict]:
        out = []
        for i in sorted(self._sums):
            row = self._sums[i]
            t = row["t"] / row["n"]
            s_t = float(self.path.noise_to_signal(torch.tensor(t))) if t > 1e-6 else None  # pure noise: s = inf
            out.append({"step": i, "t": t, "s": s_t,
                        "decode_change": row["change"] / row["n"] if i else None,
                        "committed": row["committed"] / row["n"]})
        return out


def plot_trajectory(curve: list[dict], target, *, title: str = "") -> None:
    """Decode changes per step against s(t), with the commit curve when there is one (PNG)."""
    from textflow.plots import finish, new_axes

    fig, ax = new_axes()
    finite = [r for r in curve if r["s"] is not None]
    rows = [r for r in finite if r["decode_change"] is not None]
    ax.plot([r["s"] for r in rows], [r["decode_change"] for r in rows], marker="o", label="decode change")
    if any(r["committed"] for r in finite):
        ax.plot([r["s"] for r in finite], [r["committed"] for r in finite], marker="s", label="committed")
    ax.set_xscale("log")
    ax.set_xlabel("s(t) at the step (noise-to-signal; data on the left)")
    ax.set_ylabel("fraction of tokens")
    ax.set_title(title, fontsize=9)
    finish(fig, ax, target)
