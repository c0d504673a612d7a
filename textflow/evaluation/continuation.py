"""Evaluation of conditional continuations: is a continuation likely GIVEN its prompt?

A prompt-conditioned model is useful only if what it writes after a prompt fits that prompt. So each
continuation is scored by the independent judge LM *conditioned on its prompt*
(:meth:`textflow.evaluation.judge.JudgeLM.score_continuations`: ``[BOS, *prompt, *continuation]``,
only the continuation's tokens scored). Several rows are compared at the same positions, e.g.

* ``conditional`` – the model's continuations of the prompts: must be more likely given the prompt
  (lower ``cont_ppl``) than
* ``unconditional`` – samples written without seeing the prompt, scored after the same prompts
  (fluent text that ignores the prompt; the gap between the two rows is what conditioning buys);
* ``true`` – the real continuations from the corpus: the reference (the judge's own floor for
  on-topic text, and the reference set of MAUVE).

Per row: ``cont_ppl`` with a 95 % bootstrap CI over samples, the judge tokens scored, the diversity
block of :func:`textflow.metrics.text.text_metrics` when token ids are given, and optionally MAUVE
against the true continuations. See docs/evaluation.md, section "Conditional generation".
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from textflow.evaluation.judge import truncate_at_eos
from textflow.metrics.text import text_metrics
from textflow.metrics.uncertainty import bootstrap_ci, ppl_statistic

TRUE_ROW = "true"


def check_lengths(prompts: Sequence[str], rows: Mapping[str, Sequence], what: str = "continuations") -> None:
    """Raise ValueError naming the row when a row does not have one entry per prompt."""
    for name, values in rows.items():
        if len(values) != len(prompts):
            raise ValueError(f"row {name!r} has {len(values)} {what} for {len(prompts)} prompts")


def judge_block(judge, prompts: Sequence[str], continuations: Sequence[str], *, eos: str | None,
                n_boot: int, seed: int) -> dict:
    """``cont_ppl`` (+ ``_ci95``), ``cont_tokens``, ``judge``, ``judge_dtype`` of one row's
    continuations scored given their prompts."""
    score = judge.score_continuations(prompts, continuations, eos=eos)
    per_sample = np.stack([score.nll_per_sample, score.tokens_per_sample], axis=1)
    ci = bootstrap_ci(per_sample, ppl_statistic, n_boot=n_boot, seed=seed)
    return {"cont_ppl": score.gen_ppl, "cont_ppl_ci95": list(ci), "cont_tokens": score.n_tokens,
            "judge": score.judge, "judge_dtype": score.dtype}


def evaluate_continuations(*, prompts: Sequence[str], rows: Mapping[str, Sequence[str]],
                           true_continuations: Sequence[str] | None, judge=None, eos: str | None = None,
                           n_boot: int = 1000, seed: int = 0, mauve: bool = False, cache_dir: str = ".",
                           ids: Mapping[str, Sequence[Sequence[int]]] | None = None) -> dict[str, dict]:
    """One metrics block per row of continuations of ``prompts``.

    Args:
    prompts: the conditioning texts, one per sample.
    rows: row name (``conditional``, ``unconditional``, ``true``, ...) -> one continuation per prompt.
    true_continuations: the real continuations (MAUVE's reference); None skips MAUVE.
    judge: a :class:`textflow.evaluation.judge.JudgeLM`, or None (no ``cont_ppl``).
    eos: continuations are cut at this marker before scoring and MAUVE (None: no cut).
    n_boot, seed: bootstrap resamples of the CIs, and the seed of the bootstrap and MAUVE.
    mauve: add ``mauve`` of every row but ``true`` against ``true_continuations``.
    cache_dir: where MAUVE's features model is cached.
    ids: row name -> token ids of its continuations; adds :func:`text_metrics` for those rows.
    """
    check_lengths(prompts, rows)
    if true_continuations is not None:
        check_lengths(prompts, {"true_continuations": true_continuations})
    ids = dict(ids or {})
    unknown = sorted(set(ids) - set(rows))
    if unknown:
        raise ValueError(f"ids given for unknown rows {unknown}; rows are {sorted(rows)}")
    check_lengths(prompts, ids, what="id sequences")
    out: dict[str, dict] = {}
    for name, texts in rows.items():
        block: dict = {}
        if judge is not None:
            block.update(judge_block(judge, prompts, texts, eos=eos, n_boot=n_boot, seed=seed))
        if name in ids:
            block.update(text_metrics(ids[name]))
        if mauve and true_continuations is not None and name != TRUE_ROW:
            block["mauve"] = mauve_against(texts, true_continuations, eos=eos, cache_dir=cache_dir, seed=seed)
        out[name] = block
    return out


def mauve_against(texts: Sequence[str], references: Sequence[str], *, eos: str | None, cache_dir: str,
                  seed: int) -> float:
    """MAUVE of ``texts`` against ``references``, both cut at ``eos``."""
    from textflow.evaluation import mauve as mauve_lib

    samples = [truncate_at_eos(t, eos) for t in texts]
    refs = [truncate_at_eos(t, eos) for t in references]
    return mauve_lib.mauve_score(samples, refs, cache_dir=cache_dir, seed=seed)
