"""Tokenizers. ``TextTokenizer`` wraps a fast (Rust) ``tokenizers.Tokenizer`` and is what the rest of
textflow uses; its JSON is stored in every checkpoint, so sampling needs no cache or hub.

Specs (what ``data.tokenizer._target_`` builds; each has ``build(texts=..., cache_dir=...)``):
* :class:`TrainedBPE` – byte-level BPE trained on the corpus (default on a CPU: small vocab, exact
  round trip);
* :class:`GPT2BPE` – the exact GPT-2 BPE (50,257) from the offline asset in ``openai-whisper``;
* :class:`Pretrained` – any Hugging Face fast tokenizer folder or hub name.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from textflow.data.assets import read_members, sdist_archive
from textflow.errors import ConfigError, DataError

EOS = "<|endoftext|>"
GPT2_PAT = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _atomic_save(tok: Tokenizer, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    tok.save(tmp)
    os.replace(tmp, path)


class TextTokenizer:
    """A fast tokenizer plus its end-of-text id."""

    def __init__(self, tokenizer: Tokenizer, *, eos_token: str = EOS):
        eos_id = tokenizer.token_to_id(eos_token)
        if eos_id is None:
            tokenizer.add_special_tokens([eos_token])
            eos_id = tokenizer.token_to_id(eos_token)
        self.tokenizer, self.eos_token, self.eos_id = tokenizer, eos_token, int(eos_id)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def decode_batch(self, batch) -> list[str]:
        return self.tokenizer.decode_batch([list(ids) for ids in batch], skip_special_tokens=False)

    def to_json(self) -> str:
        return self.tokenizer.to_str()

    @classmethod
    def from_json(cls, text: str) -> "TextTokenizer":
        """Rebuild from :meth:`to_json`; the end-of-text token is ``<|endoftext|>`` if present, else
        the tokenizer's first special token."""
        tok = Tokenizer.from_str(text)
        if tok.token_to_id(EOS) is None:
            special = [t.content for t in tok.get_added_tokens_decoder().values() if t.special]
            return cls(tok, eos_token=special[0] if special else EOS)
        return cls(tok)

    def fingerprint(self) -> str:
        return _sha(self.to_json())


class TrainedBPE:
    """Byte-level BPE trained on the training split and cached by (settings, corpus) hash.

    Args:
        vocab_size: target vocabulary size including the end-of-text token.
        min_frequency: minimum pair count for a merge.
    """

    def __init__(self, *, vocab_size: int = 4096, min_frequency: int = 2):
        if vocab_size < 260:
            raise ConfigError(f"data.tokenizer.vocab_size={vocab_size} is too small; a byte-level BPE needs >= 260")
        self.vocab_size, self.min_frequency = int(vocab_size), int(min_frequency)

    def fingerprint(self) -> str:
        return _sha(f"bpe:{self.vocab_size}:{self.min_frequency}")

    def build(self, *, texts: list[str], cache_dir: str, corpus_key: str) -> TextTokenizer:
        path = Path(cache_dir) / "tokenizers" / f"bpe-{_sha(self.fingerprint() + corpus_key)}.json"
        if path.is_file():
            return TextTokenizer(Tokenizer.from_file(str(path)))
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=self.vocab_size, min_frequency=self.min_frequency,
                                      special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=False)
        tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
        _atomic_save(tok, path)
        return TextTokenizer(tok)


def _tiktoken_converter():
    """transformers' ``TikTokenConverter`` reading the ``.tiktoken`` rank file itself (one
    ``base64(token bytes) rank`` pair per line), so the ``tiktoken`` package is not needed."""
    import base64

    from transformers.convert_slow_tokenizer import TikTokenConverter

    class RankFileConverter(TikTokenConverter):
        @staticmethod
        def load_tiktoken_bpe(tiktoken_url: str) -> dict[bytes, int]:
            lines = Path(tiktoken_url).read_text().split("\n")
            return {base64.b64decode(tok): int(rank) for tok, rank in (ln.split() for ln in lines if ln.strip())}

    return RankFileConverter


class GPT2BPE:
    """The exact GPT-2 BPE (r50k_base), built from ``whisper/assets/gpt2.tiktoken`` inside the
    ``openai-whisper==20250625`` source archive (never imported)."""

    PACKAGE, VERSION = "openai-whisper", "20250625"

    def fingerprint(self) -> str:
        return "gpt2-r50k"

    def build(self, *, texts: list[str] | None = None, cache_dir: str, corpus_key: str = "") -> TextTokenizer:
        path = Path(cache_dir) / "tokenizers" / "gpt2.json"
        if path.is_file():
            return TextTokenizer(Tokenizer.from_file(str(path)))
        archive = sdist_archive(self.PACKAGE, self.VERSION, cache_dir)
        members = read_members(archive, lambda n: n.endswith("whisper/assets/gpt2.tiktoken"))
        if not members:
            raise DataError(f"{archive} has no whisper/assets/gpt2.tiktoken")
        with tempfile.TemporaryDirectory() as tmp:
            vocab = Path(tmp) / "gpt2.tiktoken"
            vocab.write_bytes(next(iter(members.values())))
            tok = _tiktoken_converter()(vocab_file=str(vocab), pattern=GPT2_PAT, extra_special_tokens=[EOS]).converted()
        wrapped = TextTokenizer(tok)
        if wrapped.encode("Hello world") != [15496, 995] or wrapped.eos_id != 50256:
            raise DataError("the GPT-2 tokenizer built from the whisper asset does not match GPT-2 "
                            f"(Hello world -> {wrapped.encode('Hello world')}, eos {wrapped.eos_id})")
        _atomic_save(tok, path)
        return wrapped


class Pretrained:
    """Any Hugging Face fast tokenizer: a local folder or (with hub access) a hub name."""

    def __init__(self, *, name_or_path: str):
        self.name_or_path = str(name_or_path)

    def fingerprint(self) -> str:
        return _sha(f"pretrained:{self.name_or_path}")

    def build(self, *, texts: list[str] | None = None, cache_dir: str = "", corpus_key: str = "") -> TextTokenizer:
        try:
            from transformers import AutoTokenizer

            hf = AutoTokenizer.from_pretrained(self.name_or_path)
        except Exception as err:  # missing folder, no hub access, bad files
            raise DataError(f"could not load tokenizer name_or_path={self.name_or_path!r}: "
                            f"{str(err).splitlines()[0][:200]}") from None
        if not getattr(hf, "is_fast", False):
            raise DataError(f"tokenizer {self.name_or_path!r} has no fast (Rust) version; textflow needs one")
        return TextTokenizer(hf.backend_tokenizer, eos_token=hf.eos_token or EOS)
