"""The continuation block of a conditional text run's report (docs/conditioning.md, "Evaluating
continuations"): each sample's continuation scored by the judge given its prompt, beside the
unconditional baseline (the same seeds without the prompt, scored after the same prompts) and, for
held-out prompts, the true continuations (also MAUVE's reference)."""

from __future__ import annotations

from textflow.evaluation.continuation import evaluate_continuations


def continuation_metrics(run, gen, evaluate) -> dict:
    """``{"continuation/<row>": metrics}`` for a run whose prompts are all prefixes; {} otherwise
    (infilling has no single continuation to score). ``evaluate`` is the run's
    :class:`textflow.evaluation.evaluate.Evaluator`."""
    prompts = run.prompts
    lengths = None if prompts is None else prompts.prefix_lengths
    if not lengths:
        return {}
    tokenizer = run.loaded.tokenizer
    rows = prompts.rows(list(range(gen.ids.shape[0])))

    def tails(seqs) -> list[list[int]]:
        return [list(seq[lengths[r]:]) for seq, r in zip(seqs, rows)]

    ids = {"conditional": tails(gen.ids.tolist())}
    if gen.baseline is not None:
        ids["unconditional"] = tails(gen.baseline.ids.tolist())
    if prompts.true is not None:
        ids["true"] = tails([prompts.true[r] for r in rows])
    texts = {name: tokenizer.decode_batch(seqs) for name, seqs in ids.items()}
    prompt_texts = tokenizer.decode_batch([prompts.ids[r][:lengths[r]] for r in rows])
    blocks = evaluate_continuations(prompts=prompt_texts, rows=texts, true_continuations=texts.get("true"),
                                    judge=evaluate.judge, eos=tokenizer.eos_token, n_boot=evaluate.n_boot,
                                    seed=evaluate.seed, mauve=evaluate.mauve, cache_dir=evaluate.cache_dir, ids=ids)
    return {f"continuation/{name}": block for name, block in blocks.items()}
