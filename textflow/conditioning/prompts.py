"""Prompt templates for conditional sampling (docs/conditioning.md): ``sample.py prompt="..."`` and
``prompts_file=``.

A template is text whose tokens are given, with ``__n__`` marking a gap of ``n`` tokens to generate
(infilling); every position after the template, up to the sequence length, is generated too
(continuation). ``"The king __6__ the crown"`` gives "The king", generates six tokens, gives "the crown"
and generates the rest. (``__n__`` passes through Hydra's command-line grammar unquoted, where brackets
would not: ``sample.py prompt="The king __6__ the crown"`` works as written.) Text pieces are tokenized
one by one, so a piece's leading space stays with its first word (the BPE convention), and the
whitespace before a gap is dropped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from textflow.errors import ConfigError, DataError

GAP = re.compile(r"__(\d+)__")


def parse_template(text: str, tokenizer, *, seq_len: int) -> tuple[list[int], list[bool]]:
    """``(ids, given)``, both of length ``seq_len``, for the template ``text`` (module docstring);
    generated positions have id 0. Refuses (one line) an empty template, one longer than ``seq_len``
    and one that leaves nothing to generate."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"prompt={text!r} is empty; give text to condition on (gaps are written __n__)")
    ids: list[int] = []
    given: list[bool] = []
    pieces = GAP.split(text)
    for k, piece in enumerate(pieces):
        if k % 2:  # a gap length
            n = int(piece)
            if n < 1:
                raise ConfigError(f"prompt gap __{piece}__ is invalid; a gap is __n__ with n >= 1 tokens")
            ids += [0] * n
            given += [False] * n
            continue
        if k + 1 < len(pieces):
            piece = piece.rstrip()
        if piece:
            tokens = tokenizer.encode(piece)
            ids += tokens
            given += [True] * len(tokens)
    if not any(given):
        raise ConfigError(f"prompt={text!r} gives no tokens; a template needs text besides its __n__ gaps")
    if len(ids) > seq_len:
        raise ConfigError(f"prompt={_short(text)} is {len(ids)} tokens long with its gaps, more than "
                          f"seq_len={seq_len}; shorten it or raise seq_len (at most the training block length)")
    free = seq_len - len(ids)
    ids += [0] * free
    given += [False] * free
    if all(given):
        raise ConfigError(f"prompt={_short(text)} fills all {seq_len} positions; nothing is left to generate")
    return ids, given


def read_prompts(path: str | Path) -> list[str]:
    """The non-empty lines of a prompts file (one template per line)."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"prompts_file={str(path)!r} does not exist (one prompt template per line)")
    lines = [line.rstrip("\n") for line in file.read_text(encoding="utf-8").splitlines()]
    prompts = [line for line in lines if line.strip()]
    if not prompts:
        raise DataError(f"prompts_file={str(path)!r} has no prompts (one prompt template per line)")
    return prompts


def prefix_prompts(blocks: Sequence[Sequence[int]], *, prompt_tokens: int, seq_len: int
                   ) -> tuple[list[list[int]], list[list[bool]]]:
    """Held-out continuation prompts: the first ``prompt_tokens`` ids of each block given, the rest free
    (``prompt_source=heldout``, docs/conditioning.md)."""
    if not 1 <= prompt_tokens < seq_len:
        raise ConfigError(f"prompt_tokens={prompt_tokens} is invalid; it must be in [1, {seq_len - 1}] "
                          f"(seq_len={seq_len})")
    ids = [list(block[:prompt_tokens]) + [0] * (seq_len - prompt_tokens) for block in blocks]
    given = [[True] * prompt_tokens + [False] * (seq_len - prompt_tokens) for _ in blocks]
    return ids, given


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
