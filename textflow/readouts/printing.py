"""What a sampling run prints: a few samples and the metric table beside the reference rows (text), or
the image metrics beside the training images' (the smooth control)."""

from __future__ import annotations

REPORT_KEYS = ["gen_ppl", "unigram_entropy", "distinct_1", "distinct_2", "distinct_3", "repetition_4", "self_bleu",
               "mauve"]


CONTINUATION_KEYS = ["cont_ppl", "unigram_entropy", "distinct_2", "mauve"]


def print_report(texts: list[str], metrics: dict, references: dict[str, dict], n_show: int,
                 prompts: list[str] | None = None) -> None:
    """The first ``n_show`` texts (with their prompts), then one column per row: the samples and each
    reference; a conditional run also gets its continuation table."""
    for i, text in enumerate(texts[:n_show]):
        prompt = "" if prompts is None else f" (prompt: {prompts[i]!r})"
        print(f"--- sample {i}{prompt} ---\n{text.strip()}")
    columns = {"samples": metrics, **{k.split("/", 1)[1]: v for k, v in references.items()}}
    print("\n" + f"{'metric':<18}" + "".join(f"{name:>16}" for name in columns))
    for key in REPORT_KEYS:
        if any(key in col for col in columns.values()):
            cells = "".join(f"{col[key]:>16.4g}" if key in col else f"{'-':>16}" for col in columns.values())
            print(f"{key:<18}{cells}")
    if "mode_collapse" in metrics:
        flag = metrics["mode_collapse"]
        print(f"{'mode_collapse':<18}{'unknown (no reference)' if flag is None else str(flag):>16}")
    for key, label, fmt in (("nfe", "nfe", "d"), ("tokens_per_s", "tokens/s", ".1f")):  # models' rows too
        print(f"{label:<18}" + "".join(f"{col[key]:>16{fmt}}" if key in col else f"{'-':>16}"
                                       for col in columns.values()))
    continuations = {k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith("continuation/")}
    if continuations:
        print("\ncontinuations given their prompts\n" + f"{'metric':<18}"
              + "".join(f"{name:>16}" for name in continuations))
        for key in CONTINUATION_KEYS:
            if any(key in col for col in continuations.values()):
                cells = "".join(f"{col[key]:>16.4g}" if key in col else f"{'-':>16}" for col in continuations.values())
                print(f"{key:<18}{cells}")


def print_image_table(metrics: dict) -> None:
    """Every float metric of the samples beside the ``reference/train`` row (nan where it has none)."""
    keys = [k for k, v in metrics.items() if isinstance(v, float) and k != "wall_time_s"]
    ref = metrics.get("reference/train", {})
    print(f"{'metric':<18}{'samples':>12}{'train images':>14}")
    print("\n".join(f"{k:<18}{metrics[k]:>12.4g}{ref.get(k, float('nan')):>14.4g}" for k in keys))
