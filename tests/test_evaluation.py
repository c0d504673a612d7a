"""Judge perplexity, EOS masking, sliding windows, diversity metrics with known values."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import FIXTURE_CORPUS
from textflow.errors import DataError
from textflow.evaluation.evaluate import Evaluator, shuffle_words
from textflow.evaluation.judge import JudgeLM, load_judge, score_ids, truncate_at_eos, windows
from textflow.metrics import distinct_n, repetition_rate, self_bleu, unigram_entropy


@pytest.fixture(scope="module")
def tiny_judge(tmp_path_factory):
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from textflow.data import TrainedBPE

    texts = [p.read_text() for p in sorted((FIXTURE_CORPUS / "train").glob("*.txt"))]
    tok = TrainedBPE(vocab_size=300).build(texts=texts, cache_dir=str(tmp_path_factory.mktemp("j")), corpus_key="j")
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok.tokenizer, bos_token="<|endoftext|>",
                                     eos_token="<|endoftext|>")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=tok.vocab_size, n_positions=128, n_embd=16, n_layer=1, n_head=2))
    return JudgeLM.from_loaded(model, hf_tok, name="tiny-gpt2", batch_size=2), model, hf_tok


@torch.no_grad()
def hand_nll(model, ids: list[int]) -> float:
    """Token-by-token NLL of ids[1:] given the prefix, one forward pass per position."""
    total = 0.0
    for i in range(1, len(ids)):
        logits = model(input_ids=torch.tensor([ids[:i]])).logits[0, -1]
        total -= float(torch.log_softmax(logits.double(), -1)[ids[i]])
    return total


def test_gen_ppl_equals_a_hand_computation(tiny_judge):
    judge, model, tok = tiny_judge
    texts = ["The harbour woke before the town.", "Apple high and apple low, where the west winds go"]
    score = judge.score(texts, eos=None)
    nll, count = 0.0, 0
    for text in texts:
        ids = [tok.bos_token_id, *tok(text, add_special_tokens=False)["input_ids"]]
        nll += hand_nll(model, ids)
        count += len(ids) - 1
    assert score.n_tokens == count
    assert score.gen_ppl == pytest.approx(math.exp(nll / count), rel=1e-4)


def test_text_after_the_first_eos_is_not_scored(tiny_judge):
    judge, _, _ = tiny_judge
    clean = judge.score(["The river was wide."], eos="<|endoftext|>")
    padded = judge.score(["The river was wide.<|endoftext|>garbage garbage garbage"], eos="<|endoftext|>")
    assert padded.n_tokens == clean.n_tokens and padded.gen_ppl == pytest.approx(clean.gen_ppl)
    assert truncate_at_eos("a<E>b<E>c", "<E>") == "a" and truncate_at_eos("abc", None) == "abc"


@pytest.mark.parametrize("n,context,stride", [(5, 8, 4), (20, 8, 4), (33, 10, 3), (9, 8, 7)])
def test_sliding_windows_score_every_position_once(n, context, stride):
    scored = []
    for start, end, first in windows(n, context, stride):
        assert end - start <= context and start < first
        scored += list(range(first, end))
    assert scored == list(range(1, n))


@torch.no_grad()
def test_windowed_scoring_matches_per_window_hand_computation(tiny_judge):
    _, model, _ = tiny_judge
    seq = list(range(3, 23))  # 20 ids
    nll, count = score_ids(model, [seq], context=8, stride=4)
    expected = 0.0
    for start, end, first in windows(len(seq), 8, 4):
        for pos in range(first, end):
            logits = model(input_ids=torch.tensor([seq[start:pos]])).logits[0, -1]
            expected -= float(torch.log_softmax(logits.double(), -1)[seq[pos]])
    assert count == [19] and nll[0] == pytest.approx(expected, rel=1e-4)


def test_diversity_metrics_on_hand_made_samples():
    assert unigram_entropy([[1, 1, 2, 2]]) == pytest.approx(math.log(2))
    assert unigram_entropy([[5, 5, 5]]) == 0.0
    assert distinct_n([[1, 2, 3], [1, 2, 4]], 1) == pytest.approx(4 / 6)
    assert distinct_n([[1, 2, 3], [1, 2, 4]], 2) == pytest.approx(3 / 4)
    assert repetition_rate([[1, 2, 1, 2, 1, 2]], 2) == pytest.approx(1 - 2 / 5)
    same = [[1, 2, 3, 4, 5, 6]] * 3
    assert self_bleu(same) == pytest.approx(1.0)
    disjoint = [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12, 13, 14, 15]]
    assert self_bleu(disjoint) < 0.05


def test_evaluator_flags_collapse_and_reports_cis(tiny_judge):
    judge, _, _ = tiny_judge
    ev = Evaluator(judge=judge, n_boot=200)
    collapsed = ev([[7] * 10, [7] * 9 + [8]], ["a a a", "a a b"], reference_entropy=2.0)
    assert collapsed["mode_collapse"] is True
    lo, hi = collapsed["gen_ppl_ci95"]
    assert lo <= collapsed["gen_ppl"] <= hi and collapsed["judge"] == "tiny-gpt2"
    assert collapsed["judge_dtype"] == "float32"
    fine = Evaluator(judge=None)([list(range(10)), list(range(5, 15))], ["x", "y"], reference_entropy=2.0)
    assert fine["mode_collapse"] is False and "gen_ppl" not in fine
    unknown = Evaluator(judge=None)([list(range(10))], ["x"])  # reference=false: the flag is unknown, not absent
    assert "mode_collapse" in unknown and unknown["mode_collapse"] is None


def test_shuffled_words_keep_the_words():
    out = shuffle_words(["one two three four five six"], seed=1)
    assert sorted(out[0].split()) == sorted("one two three four five six".split())
    assert out != ["one two three four five six"]


def block_import(monkeypatch, module: str) -> None:
    """Make ``import module`` fail as if the package were not installed."""
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == module:
            raise ImportError(f"No module named {module!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_missing_optional_dependency_is_a_clear_message(monkeypatch):
    block_import(monkeypatch, "gguf")
    with pytest.raises(DataError, match=r"needs the package 'gguf': pip install 'textflow\[eval\]'"):
        load_judge("smollm2", cache_dir="/nonexistent")


def test_mauve_without_its_package_is_a_clear_message(monkeypatch):
    from textflow.evaluation.mauve import mauve_score

    block_import(monkeypatch, "mauve")
    with pytest.raises(DataError, match=r"pip install 'textflow\[mauve\]'"):
        mauve_score(["a"], ["b"], cache_dir="/nonexistent")
