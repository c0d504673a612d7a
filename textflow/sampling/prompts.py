"""The prompts of a conditional sampling run (docs/conditioning.md): ``prompt=``, ``prompts_file=``
or ``prompt_source=heldout`` (the first ``prompt_tokens`` of held-out blocks, whose true continuations
the report scores against), turned into one :class:`textflow.conditioning.Condition` per batch.

Sample ``i`` gets prompt ``i mod P``, so a run's samples do not depend on its batch size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from omegaconf import DictConfig

from textflow.checks import require_int
from textflow.conditioning import Condition, parse_template, read_prompts
from textflow.conditioning.prompts import prefix_prompts
from textflow.data.heldout import heldout_blocks
from textflow.errors import ConfigError, DataError

SOURCES = ("heldout",)


@dataclass
class Prompts:
    """``ids`` and ``given`` (P lists of ``seq_len``), the prompt ``templates`` as written, and for
    held-out prompts the ``true`` blocks (the real continuations)."""

    ids: list[list[int]]
    given: list[list[bool]]
    templates: list[str]
    true: Optional[list[list[int]]] = None

    def rows(self, indices: list[int]) -> list[int]:
        return [i % len(self.ids) for i in indices]

    def condition(self, indices: list[int], *, embed, device) -> Condition:
        """The :class:`Condition` of samples ``indices`` (their latents from ``embed``, the denoiser's)."""
        rows = self.rows(indices)
        ids = torch.tensor([self.ids[r] for r in rows], dtype=torch.long, device=device)
        mask = torch.tensor([self.given[r] for r in rows], dtype=torch.bool, device=device)
        with torch.no_grad():
            latents = embed(ids)
        return Condition(mask=mask, ids=ids, latents=latents)

    @property
    def prefix_lengths(self) -> Optional[list[int]]:
        """Each prompt's length when every prompt is a prefix (continuation), else None (infilling)."""
        lengths = []
        for given in self.given:
            n = sum(given)
            if not all(given[:n]):
                return None
            lengths.append(n)
        return lengths


def requested(cfg: DictConfig) -> bool:
    """Whether the run is conditional (``prompt``, ``prompts_file`` or ``prompt_source`` set)."""
    return any(cfg.get(key) is not None for key in ("prompt", "prompts_file", "prompt_source"))


def build_prompts(cfg: DictConfig, loaded, *, seq_len: int) -> Optional[Prompts]:
    """The run's prompts, or None for an unconditional run; refuses, in one line, two sources at once,
    an unknown source, and a checkpoint trained without conditioning."""
    chosen = [key for key in ("prompt", "prompts_file", "prompt_source") if cfg.get(key) is not None]
    if not chosen:
        return None
    if len(chosen) > 1:
        raise ConfigError(f"{' and '.join(chosen)} are both set; give one of prompt=, prompts_file=, prompt_source=")
    check_conditional_model(loaded, seq_len=seq_len)
    tokenizer = loaded.tokenizer
    if cfg.get("prompt_source") is not None:
        if cfg.prompt_source not in SOURCES:
            raise ConfigError(f"prompt_source={cfg.prompt_source!r} is not valid; choose one of: {', '.join(SOURCES)}")
        n = require_int("prompt_tokens", cfg.prompt_tokens, low=1, high=seq_len - 1)
        blocks = heldout_blocks(loaded.config.data.corpus, tokenizer, seq_len=seq_len, num=cfg.num_samples)
        if not blocks:
            raise DataError("prompt_source=heldout found no held-out text in the checkpoint's corpus")
        ids, given = prefix_prompts(blocks, prompt_tokens=n, seq_len=seq_len)
        templates = tokenizer.decode_batch([b[:n] for b in blocks])
        return Prompts(ids=ids, given=given, templates=templates, true=[list(b) for b in blocks])
    templates = [str(cfg.prompt)] if cfg.get("prompt") is not None else read_prompts(cfg.prompts_file)
    parsed = [parse_template(text, tokenizer, seq_len=seq_len) for text in templates]
    return Prompts(ids=[p[0] for p in parsed], given=[p[1] for p in parsed], templates=templates)


def check_conditional_model(loaded, *, seq_len: int) -> None:
    """A prompt needs a model trained with conditioning masks and one latent position per token."""
    module = loaded.config.get("module", {}) or {}
    condition = module.get("condition") if hasattr(module, "get") else None
    if not condition or "_target_" not in condition:
        raise ConfigError(f"{loaded.path} was trained without conditioning, so it cannot follow a prompt; train with "
                          f"condition@module.condition=masks (docs/conditioning.md)")
    kind = loaded.denoiser().autoencoder.readout_kind.name
    if kind != "parallel":
        raise ConfigError(f"prompts need a per-token latent space; this checkpoint's readout is {kind!r}")
