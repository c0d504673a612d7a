"""Tokenizers. ``TextTokenizer`` wraps a fast (Rust) ``tokenizers.Tokenizer`` and is what the rest of
textflow uses; its JSON is stored in every checkpoint, so sampling needs no cache or hub.

Specs (what ``data.tokenizer._target_`` builds; each has ``build(*, texts, cache_dir)`` and
``fingerprint()``):
* :class:`TrainedBPE` – byte-level BPE trained on the corpus (default on a CPU: small vocab, exact
  round trip);
* :class:`GPT2BPE` – the exact GPT-2 BPE (50,257) from the offline asset in ``openai-whisper``;
* :class:`Pretrained` – any Hugging Face fast tokenizer folder or hub name.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from textflow.assets import GPT2_BPE, get, publish, resolve, resolve_pretrained
from textflow.errors import ConfigError, DataError

EOS = "<|endoftext|>"
GPT2_PAT = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_EOS_KEY = "textflow_eos_token"  # only in to_json() of tokenizers whose end-of-text token is not EOS


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()[:16]


def texts_fingerprint(texts: Sequence[str]) -> str:
    """A short hash of a list of documents (their order and exact contents)."""
    h = hashlib.sha256()
    for text in texts:
        h.update(text.encode("utf-8", errors="surrogatepass"))
        h.update(b"\x00\x1f")
    return h.hexdigest()[:16]


def _save_once(tok: Tokenizer, path: Path) -> TextTokenizer:
    """Publish ``tok`` at ``path`` unless a racing process already did; return what is on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as fh:
        tmp = Path(fh.name)
    tok.save(str(tmp))
    publish(tmp, path)
    return TextTokenizer(Tokenizer.from_file(str(path)))


class TextTokenizer:
    """A fast tokenizer plus its end-of-text id (added as a special token when missing).

    Args:
        tokenizer: a ``tokenizers.Tokenizer``.
        eos_token: the end-of-text token string placed between documents.
    """

    def __init__(self, tokenizer: Tokenizer, *, eos_token: str = EOS):
        # textflow tokenizes whole documents into one stream: a pretrained tokenizer.json's truncation
        # (MiniLM's: 128 tokens) or padding would silently cut every document (a bug found in frozen_embed)
        tokenizer.no_truncation()
        tokenizer.no_padding()
        eos_id = tokenizer.token_to_id(eos_token)
        if eos_id is None:
            tokenizer.add_special_tokens([eos_token])
            eos_id = tokenizer.token_to_id(eos_token)
        self.tokenizer, self.eos_token, self.eos_id = tokenizer, eos_token, int(eos_id)

    @property
    def vocab_size(self) -> int:
        """Number of ids, added tokens included (the model's embedding and readout size)."""
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added)."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """:meth:`encode` over many texts with the parallel Rust batch encoder."""
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` (special tokens kept, so the end-of-text token shows)."""
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        """:meth:`decode` over many id sequences."""
        return self.tokenizer.decode_batch([[int(i) for i in ids] for ids in batch], skip_special_tokens=False)

    def to_json(self) -> str:
        """The ``tokenizer.json`` text (plus the end-of-text token name when it is not ``<|endoftext|>``)."""
        text = self.tokenizer.to_str()
        if self.eos_token == EOS:
            return text
        return json.dumps({**json.loads(text), _EOS_KEY: self.eos_token}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> TextTokenizer:
        """Rebuild from :meth:`to_json`: the end-of-text token is the stored name, else
        ``<|endoftext|>`` when present, else the tokenizer's first special token."""
        data = json.loads(text)
        eos = data.pop(_EOS_KEY, None)
        tok = Tokenizer.from_str(json.dumps(data) if eos is not None else text)
        if eos is None and tok.token_to_id(EOS) is None:
            special = [t.content for _, t in sorted(tok.get_added_tokens_decoder().items()) if t.special]
            eos = special[0] if special else None
        return cls(tok, eos_token=eos or EOS)

    def fingerprint(self) -> str:
        """Short hash of :meth:`to_json` (keys the token-id cache)."""
        return _sha(self.to_json())


class TrainedBPE:
    """Byte-level BPE trained on the training split and cached at
    ``<cache_dir>/tokenizers/bpe-<hash>.json`` (hash of the settings and the training texts). Exact
    round trip: ``decode(encode(s)) == s`` for every string.

    Args:
        vocab_size: target vocabulary size including the end-of-text token (>= 257; a small corpus
            may stop short of it).
        min_frequency: minimum pair count for a merge.
    """

    def __init__(self, *, vocab_size: int = 4096, min_frequency: int = 2):
        if int(vocab_size) < 257:
            raise ConfigError(f"data.tokenizer.vocab_size={vocab_size} is too small; a byte-level BPE needs >= 257 "
                              "(256 bytes + end-of-text)")
        if int(min_frequency) < 1:
            raise ConfigError(f"data.tokenizer.min_frequency={min_frequency} is invalid; it must be >= 1")
        self.vocab_size, self.min_frequency = int(vocab_size), int(min_frequency)

    def fingerprint(self) -> str:
        """Hash of the settings."""
        return _sha(f"bpe:{self.vocab_size}:{self.min_frequency}")

    def build(self, *, texts: Sequence[str], cache_dir: str, corpus_key: str | None = None) -> TextTokenizer:
        """Train on ``texts`` (or load the cached result). ``corpus_key`` optionally adds a name to the
        cache key; the texts themselves are always hashed."""
        key = _sha(f"{self.fingerprint()}|{texts_fingerprint(texts)}|{corpus_key or ''}")
        path = Path(cache_dir).expanduser() / "tokenizers" / f"bpe-{key}.json"
        if path.is_file():
            return TextTokenizer(Tokenizer.from_file(str(path)))
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=self.vocab_size, min_frequency=self.min_frequency,
                                      special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=False)
        tok.train_from_iterator(list(texts), trainer=trainer, length=len(texts))
        return _save_once(tok, path)


def _rank_file_converter():
    """transformers' ``TikTokenConverter`` reading the ``.tiktoken`` rank file itself (one
    ``base64(token bytes) rank`` pair per line), so the ``tiktoken`` package is not needed."""
    from transformers.convert_slow_tokenizer import TikTokenConverter

    class RankFileConverter(TikTokenConverter):
        @staticmethod
        def load_tiktoken_bpe(tiktoken_url: str) -> dict[bytes, int]:
            lines = Path(tiktoken_url).read_text().splitlines()
            return {base64.b64decode(tok): int(rank) for tok, rank in (ln.split() for ln in lines if ln.strip())}

    return RankFileConverter


class GPT2BPE:
    """The exact GPT-2 BPE (r50k_base, 50,257 ids, end-of-text 50256), built from
    ``whisper/assets/gpt2.tiktoken`` inside the ``openai-whisper==20250625`` source archive (the
    registered asset ``gpt2-bpe`` of :mod:`textflow.assets`: fetched with ``pip download``, never
    installed or imported) and cached at ``<cache_dir>/tokenizers/gpt2.json``."""

    def fingerprint(self) -> str:
        """A constant: the vocabulary is fixed."""
        return "gpt2-r50k"

    def build(self, *, texts: Sequence[str] | None = None, cache_dir: str, corpus_key: str | None = None
              ) -> TextTokenizer:
        """Load the cached tokenizer or convert the rank file (``texts`` are not used)."""
        path = Path(cache_dir).expanduser() / "tokenizers" / "gpt2.json"
        if path.is_file():
            return TextTokenizer(Tokenizer.from_file(str(path)))
        vocab = resolve(GPT2_BPE, cache_dir=cache_dir)
        tok = _rank_file_converter()(vocab_file=str(vocab), pattern=GPT2_PAT, extra_special_tokens=[EOS]).converted()
        wrapped = TextTokenizer(tok)
        if wrapped.encode("Hello world") != [15496, 995] or wrapped.eos_id != 50256 or wrapped.vocab_size != 50257:
            raise DataError("the GPT-2 tokenizer built from the whisper asset does not match GPT-2 "
                            f"(Hello world -> {wrapped.encode('Hello world')}, eos {wrapped.eos_id}); "
                            f"delete {get(GPT2_BPE).cached(cache_dir)}")
        return _save_once(tok, path)


class Pretrained:
    """Any Hugging Face fast tokenizer: a local folder or (with hub access) a hub name. Its end-of-text
    token is its ``eos_token``, or ``<|endoftext|>`` (added) when it has none.

    Args:
        name_or_path: a folder with ``tokenizer.json`` (or a hub name), for ``AutoTokenizer.from_pretrained``;
            ``minilm`` is the offline all-MiniLM-L6-v2 wheel (:mod:`textflow.assets`), whose embeddings
            ``autoencoder=frozen_embed`` reads.
        eos_token: the end-of-text token (default: the tokenizer's own ``eos_token``).
    """

    def __init__(self, *, name_or_path: str, eos_token: str | None = None):
        self.name_or_path = str(name_or_path)
        self.eos_token = eos_token

    def fingerprint(self) -> str:
        """Hash of the name (the built tokenizer's own fingerprint keys the token cache)."""
        return _sha(f"pretrained:{self.name_or_path}")

    def build(self, *, texts: Sequence[str] | None = None, cache_dir: str = "", corpus_key: str | None = None
              ) -> TextTokenizer:
        """Load the tokenizer (``texts`` and ``cache_dir`` are not used; the hub has its own cache)."""
        try:
            from transformers import AutoTokenizer

            hf = AutoTokenizer.from_pretrained(resolve_pretrained(self.name_or_path, cache_dir))
        except Exception as err:  # missing folder, no hub access, bad files
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise DataError(f"could not load tokenizer name_or_path={self.name_or_path!r}: {first}") from None
        if not getattr(hf, "is_fast", False):
            raise DataError(f"tokenizer name_or_path={self.name_or_path!r} has no fast (Rust) version; textflow "
                            "needs one (a folder with tokenizer.json)")
        return TextTokenizer(hf.backend_tokenizer, eos_token=self.eos_token or hf.eos_token or EOS)
