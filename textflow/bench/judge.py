"""Judge-LM scoring cost: N samples of L tokens scored by the default judge (issue target: 64 x 128
tokens in <= 60 s on a 2-core CPU), load time reported separately."""

from __future__ import annotations

import time

from textflow.assets import SMOLLM2
from textflow.bench.runner import time_call
from textflow.evaluation.judge import JudgeLM


def run(*, num_samples: int = 64, tokens: int = 128, judge: str = SMOLLM2, batch_size: int = 16,
        cache_dir: str, repeats: int = 3) -> list[dict]:
    scorer = JudgeLM(name_or_path=judge, batch_size=batch_size, cache_dir=cache_dir)
    start = time.perf_counter()
    model, tok = scorer._model()
    load_s = time.perf_counter() - start
    base = ("It is a truth universally acknowledged, that a single man in possession of a good fortune, "
            "must be in want of a wife. ") * 20
    ids = tok(base, add_special_tokens=False)["input_ids"]
    texts = [tok.decode(ids[i:i + tokens - 1]) for i in range(num_samples)]  # BOS + (tokens - 1) = tokens
    timing = time_call(lambda: scorer.score(texts, eos=None), warmup=1, repeats=repeats, desc="judge scoring")
    n_tok = scorer.score(texts[:1], eos=None).n_tokens + 1
    return [{"judge": judge, "samples": num_samples, "tokens_per_sample": n_tok, "batch_size": batch_size,
             "load_s": load_s, **timing, "target_s": 60.0, "met": timing["median_s"] <= 60.0}]
