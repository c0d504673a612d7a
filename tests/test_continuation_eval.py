"""Judge perplexity of continuations given their prompts, and the per-row continuation report."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import FIXTURE_CORPUS
from textflow.evaluation.continuation import evaluate_continuations
from textflow.evaluation.judge import JudgeLM, score_ids, truncate_at_eos, windows

EOS = "<|endoftext|>"
PROMPTS = ["The harbour woke before the town.", "Apple high and apple low,", ""]
CONTS = [" The boats went out at dawn and the gulls followed them.",
         " where the west winds go" + EOS + "garbage after the end",
         "The river was wide."]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from textflow.data import TrainedBPE

    texts = [p.read_text() for p in sorted((FIXTURE_CORPUS / "train").glob("*.txt"))]
    cache = str(tmp_path_factory.mktemp("jc"))
    tok = TrainedBPE(vocab_size=300).build(texts=texts, cache_dir=cache, corpus_key="jc")
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok.tokenizer, bos_token=EOS, eos_token=EOS)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=tok.vocab_size, n_positions=128, n_embd=16, n_layer=1, n_head=2)
    model = GPT2LMHeadModel(config)
    return model.eval(), hf_tok


def make_judge(tiny, **kwargs) -> JudgeLM:
    model, tok = tiny
    return JudgeLM.from_loaded(model, tok, name="tiny-gpt2", batch_size=2, **kwargs)


def encode(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


@torch.no_grad()
def manual_cont_nll(model, tok, prompt: str, cont: str) -> tuple[float, int]:
    """NLL of the continuation tokens from one forward pass over [BOS, *prompt, *continuation]."""
    p, c = encode(tok, prompt), encode(tok, truncate_at_eos(cont, EOS))
    ids = [tok.bos_token_id, *p, *c]
    logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), -1)
    first = 1 + len(p)
    return -sum(float(logp[pos - 1, ids[pos]]) for pos in range(first, len(ids))), len(c)


def old_windows(n: int, context: int, stride: int) -> list[tuple[int, int, int]]:
    """``windows`` as it was before ``first`` existed (the reference for unchanged behaviour)."""
    if n <= context:
        return [(0, n, 1)]
    out, scored_to, start = [], 1, 0
    while scored_to < n:
        end = min(start + context, n)
        out.append((start, end, scored_to))
        scored_to = end
        start = end - (context - stride) if end < n else end
    return out


def test_only_the_continuation_tokens_are_scored(tiny):
    model, tok = tiny
    score = make_judge(tiny).score_continuations(PROMPTS, CONTS, eos=EOS)
    expected = [manual_cont_nll(model, tok, p, c) for p, c in zip(PROMPTS, CONTS)]
    assert score.nll_per_sample == pytest.approx([e[0] for e in expected], rel=1e-4)
    assert score.tokens_per_sample == [e[1] for e in expected]
    total_nll, total = sum(e[0] for e in expected), sum(e[1] for e in expected)
    assert score.gen_ppl == pytest.approx(math.exp(total_nll / total), rel=1e-4)
    # the prompt is context: the same continuation scored alone gets a different NLL
    alone = make_judge(tiny).score([CONTS[0]], eos=EOS)
    assert alone.tokens_per_sample == [score.tokens_per_sample[0]]
    assert abs(alone.nll_per_sample[0] - score.nll_per_sample[0]) > 1e-3


def test_scored_token_count_is_the_judge_length_of_the_truncated_continuation(tiny):
    _, tok = tiny
    conts = [CONTS[1], "", EOS + "nothing before the end", "one two three"]
    prompts = ["Some prompt text here."] * len(conts)
    score = make_judge(tiny).score_continuations(prompts, conts, eos=EOS)
    assert score.tokens_per_sample == [len(encode(tok, truncate_at_eos(c, EOS))) for c in conts]
    assert score.tokens_per_sample[1] == score.tokens_per_sample[2] == 0
    assert score.nll_per_sample[1] == score.nll_per_sample[2] == 0.0
    # without an eos marker, the text after it is scored too
    uncut = make_judge(tiny).score_continuations(prompts[:1], conts[:1], eos=None)
    assert uncut.n_tokens > score.tokens_per_sample[0]
    all_empty = make_judge(tiny).score_continuations(["a prompt"], [""], eos=EOS)
    assert all_empty.n_tokens == 0 and math.isnan(all_empty.gen_ppl)


def test_lengths_must_match(tiny):
    with pytest.raises(ValueError, match=r"3 prompts but 2 continuations"):
        make_judge(tiny).score_continuations(PROMPTS, CONTS[:2])


@pytest.mark.parametrize("n,context,stride,first", [
    (5, 8, 4, 3), (20, 8, 4, 1), (20, 8, 4, 6), (20, 8, 4, 13),
    (33, 10, 3, 2), (33, 10, 3, 30), (9, 8, 7, 5), (12, 8, 4, 12)])
def test_windows_from_a_first_position_score_each_position_once(n, context, stride, first):
    scored = []
    for start, end, first_scored in windows(n, context, stride, first):
        assert end - start <= context and start < first_scored and first_scored >= first
        # each window's first scored token keeps up to context - stride tokens of left context
        assert first_scored - start >= min(first_scored, context - stride)
        scored += list(range(first_scored, end))
    assert scored == list(range(first, n))


@torch.no_grad()
def test_small_context_windows_match_a_hand_computation_and_a_big_context_when_it_fits(tiny):
    model, tok = tiny
    prompt = "The harbour woke before the town, and the boats"
    cont = " went out at dawn and the gulls followed."
    p, c = encode(tok, prompt), encode(tok, cont)
    ids = [tok.bos_token_id, *p, *c]
    first, n = 1 + len(p), len(ids)
    assert n > 12 and len(c) > 8  # longer than the small context below
    small = make_judge(tiny, max_context=8).score_continuations([prompt], [cont], eos=None)
    expected = 0.0
    for start, end, f in windows(n, 8, 4, first):
        for pos in range(f, end):
            logits = model(input_ids=torch.tensor([ids[start:pos]])).logits[0, -1]
            expected -= float(torch.log_softmax(logits.double(), -1)[ids[pos]])
    assert small.tokens_per_sample == [len(c)]
    assert small.nll_per_sample[0] == pytest.approx(expected, rel=1e-4)
    fits = make_judge(tiny, max_context=n).score_continuations([prompt], [cont], eos=None)
    big = make_judge(tiny).score_continuations([prompt], [cont], eos=None)
    assert fits.tokens_per_sample == big.tokens_per_sample == [len(c)]
    assert fits.nll_per_sample[0] == pytest.approx(big.nll_per_sample[0], rel=1e-5)
    assert big.nll_per_sample[0] == pytest.approx(manual_cont_nll(model, tok, prompt, cont)[0], rel=1e-4)


@torch.no_grad()
def test_plain_scoring_is_unchanged(tiny):
    model, tok = tiny
    for n in range(1, 40):
        for context, stride in [(8, 4), (10, 3), (9, 8), (16, 8)]:
            assert windows(n, context, stride) == old_windows(n, context, stride)
    texts = ["The harbour woke before the town.", "Apple high and apple low, where the west winds go"]
    score = make_judge(tiny).score(texts, eos=None)
    nll, count = [], []
    for text in texts:
        ids = [tok.bos_token_id, *encode(tok, text)]
        logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), -1)
        nll.append(-sum(float(logp[i - 1, ids[i]]) for i in range(1, len(ids))))
        count.append(len(ids) - 1)
    assert score.tokens_per_sample == count and score.nll_per_sample == pytest.approx(nll, rel=1e-4)
    seq = list(range(3, 23))
    assert score_ids(model, [seq], context=8, stride=4) == score_ids(model, [seq], context=8, stride=4,
                                                                     first_scored=[1])
    with pytest.raises(ValueError, match="first_scored has 2 entries for 1 sequences"):
        score_ids(model, [seq], first_scored=[1, 1])


def test_evaluate_continuations_rows_keys_and_cis(tiny, monkeypatch):
    import textflow.evaluation.mauve as mauve_lib

    calls = []
    def fake_mauve(samples, refs, *, cache_dir, seed):
        calls.append((list(samples), list(refs), cache_dir, seed))
        return 0.5

    monkeypatch.setattr(mauve_lib, "mauve_score", fake_mauve)
    prompts = ["The harbour woke before the town."] * 4 + ["Apple high and apple low,"] * 4
    true = [" The boats went out.", " The gulls cried.", " Dawn came slowly.", " Nets were mended.",
            " where the west winds go", " and the orchard sleeps", " under the cold moon", " till morning"]
    rows = {"conditional": [t + EOS + "junk" for t in true[::-1]], "unconditional": ["zzz qqq xxx"] * 8,
            "true": true}
    ids = {"conditional": [[1, 2, 3, 4], [2, 3, 4, 5]] * 4}
    out = evaluate_continuations(prompts=prompts, rows=rows, true_continuations=true, judge=make_judge(tiny),
                                 eos=EOS, n_boot=200, seed=3, mauve=True, cache_dir="cache", ids=ids)
    assert set(out) == set(rows)
    for name, block in out.items():
        lo, hi = block["cont_ppl_ci95"]
        assert lo <= block["cont_ppl"] <= hi and lo < hi and block["judge"] == "tiny-gpt2"
        assert block["cont_tokens"] > 0
    assert out["conditional"]["distinct_1"] == pytest.approx(5 / 32)
    assert out["conditional"]["num_samples"] == 8
    assert "distinct_1" not in out["true"] and "mauve" not in out["true"]
    assert out["conditional"]["mauve"] == out["unconditional"]["mauve"] == 0.5
    assert len(calls) == 2 and calls[0] == (true[::-1], true, "cache", 3)  # cut at eos
    # the judge numbers are those of score_continuations on the eos-cut texts
    direct = make_judge(tiny).score_continuations(prompts, rows["conditional"], eos=EOS)
    assert out["conditional"]["cont_ppl"] == pytest.approx(direct.gen_ppl)
    assert out["conditional"]["cont_tokens"] == direct.n_tokens
    assert not np.isclose(out["unconditional"]["cont_ppl"], out["true"]["cont_ppl"])


def test_evaluate_continuations_without_judge_and_bad_lengths(tiny):
    out = evaluate_continuations(prompts=["a", "b"], rows={"conditional": ["x", "y"]},
                                 true_continuations=None, ids={"conditional": [[1, 1], [1, 2]]}, mauve=True)
    assert "cont_ppl" not in out["conditional"] and "mauve" not in out["conditional"]
    assert out["conditional"]["unigram_entropy"] == pytest.approx(math.log(2) / 2)
    with pytest.raises(ValueError, match=r"row 'unconditional' has 1 continuations for 2 prompts"):
        evaluate_continuations(prompts=["a", "b"], rows={"conditional": ["x", "y"], "unconditional": ["z"]},
                               true_continuations=None, judge=make_judge(tiny))
    with pytest.raises(ValueError, match=r"row 'conditional' has 3 id sequences for 2 prompts"):
        evaluate_continuations(prompts=["a", "b"], rows={"conditional": ["x", "y"]}, true_continuations=None,
                               ids={"conditional": [[1], [2], [3]]})
