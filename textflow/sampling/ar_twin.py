"""The AR twin's reference row: ``python sample.py ckpt_path=FLOW ar_twin=TWIN`` (docs/evaluation.md,
"The AR twin").

``TWIN`` is the final.ckpt of ``python train.py experiment=ar_twin`` (:mod:`textflow.training.ar_twin`):
a causal LM of the flow's size trained on the flow's data. It is read through the one checkpoint reader
(:func:`textflow.checkpoint.read_checkpoint`, key ``ar_twin``), must be of kind ``ar_twin`` and must
share the flow checkpoint's tokenizer and vocabulary (:func:`textflow.checkpoint.check_same_vocabulary`);
each failure is one line naming ``ar_twin=``. It then draws ``num_samples`` sequences of the run's
``seq_len`` tokens (ancestral sampling from its BOS at temperature 1, :meth:`CausalLM.sample`; sample
``i`` from its own generator on the stream ``stream_seed(seed, "ar_twin")``, so the samples do not
depend on ``batch_size``), timed like the flow's (tokens/s), and hands them, decoded by the flow's
tokenizer, to the text report as the reference row ``reference/ar_twin``
(:class:`textflow.readouts.references.ReferenceSamples`). A sweep samples and scores the twin once.
"""

from __future__ import annotations

import time
from typing import Mapping

import torch
from omegaconf import DictConfig

from textflow.baselines import CausalLM
from textflow.checks import require_int
from textflow.checkpoint import check_same_vocabulary, checkpoint_config, read_checkpoint
from textflow.errors import CheckpointError, ConfigError
from textflow.noise import per_sample_generators, stream_seed
from textflow.readouts.reference_cache import cached
from textflow.readouts.references import ReferenceSamples

KEY = "ar_twin"  # the sample.py option, the reference row's name and the checkpoint kind
TEMPERATURE = 1.0  # the twin's samples are its own distribution


def load_twin(path: str, *, flow_info: Mapping) -> tuple[CausalLM, int, dict]:
    """(model on the CPU in eval mode, its BOS id, its run info) of the twin checkpoint ``path``, checked
    against the flow checkpoint's run info ``flow_info`` (the same tokenizer and vocabulary)."""
    where = f"{KEY}={str(path)!r}"
    ckpt = read_checkpoint(path, key=KEY)
    info = ckpt["textflow"]
    kind = info.get("kind", "flow")
    if kind != KEY:
        raise CheckpointError(f"{where} is a {kind!r} checkpoint, not an AR twin; pass the final.ckpt of "
                              f"python train.py experiment=ar_twin (a flow checkpoint goes to ckpt_path=)")
    check_same_vocabulary(KEY, path, info, tokenizer_json=flow_info.get("tokenizer"),
                          vocab_size=flow_info.get("vocab_size"),
                          hint="train the twin on the flow's data and tokenizer (train.py experiment=ar_twin "
                               "with the flow's data=...)")
    spec = checkpoint_config(info, source=where).get(KEY)
    prefix = "model."
    weights = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    try:
        if spec is None:
            raise ConfigError("no ar_twin model spec is stored")
        model = CausalLM.from_spec(spec)
        bos_id = require_int("bos_id", spec.get("bos_id"), low=0, high=model.spec["vocab_size"] - 1)
        model.load_state_dict(weights)
    except (ConfigError, RuntimeError) as err:
        reason = " ".join(str(err).strip().splitlines()[:2])[:200]
        raise CheckpointError(f"{where} is not a usable AR twin checkpoint: {reason}") from None
    return model.eval(), bos_id, dict(info)


def twin_references(cfg: DictConfig, loaded, *, seq_len: int,
                    device: torch.device) -> dict[str, ReferenceSamples]:
    """``{"ar_twin": its samples}`` when ``cfg.ar_twin`` names a twin checkpoint, else ``{}``; sampled once
    per process for the same twin, flow checkpoint, length, count, seed and device."""
    path = cfg.get(KEY)
    if path is None:
        return {}
    path = str(path)
    if loaded.tokenizer is None:
        raise ConfigError(f"{KEY}={path!r} is a text reference row, but ckpt_path={str(loaded.path)!r} has "
                          "no tokenizer (images); drop ar_twin=")
    num, seed = require_int("num_samples", cfg.num_samples, low=1), require_int("seed", cfg.seed, low=0)
    batch = require_int("batch_size", cfg.batch_size, low=1)
    bf16 = str(cfg.get("precision", "32")) == "bf16" and device.type == "cuda"
    key = (KEY, path, str(loaded.path), int(seq_len), num, seed, str(device), bf16)
    return {KEY: cached(key, lambda: _sample_twin(path, loaded, key=key, seq_len=int(seq_len), num=num,
                                                  seed=seed, batch_size=batch, device=device, bf16=bf16))}


def _sample_twin(path: str, loaded, *, key: tuple, seq_len: int, num: int, seed: int, batch_size: int,
                 device: torch.device, bf16: bool) -> ReferenceSamples:
    model, bos_id, info = load_twin(path, flow_info=loaded.info)
    trained = int(info["seq_len"])
    if seq_len > trained:
        raise CheckpointError(f"{KEY}={path!r} was trained on blocks of {trained} tokens, shorter than this "
                              f"run's {seq_len}; pass seq_len={trained} or a twin trained on the flow's "
                              "data.seq_len")
    model.to(device)
    generators = per_sample_generators(stream_seed(seed, KEY), range(num), device=device)
    ids = []
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
        # one untimed token first: the device's one-off start-up (kernels, library handles) is not the twin's
        model.sample(1, 1, bos_id=bos_id, generators=[torch.Generator(device=device).manual_seed(0)]).cpu()
        start = time.perf_counter()
        for lo in range(0, num, batch_size):
            chunk = generators[lo:lo + batch_size]
            ids.append(model.sample(len(chunk), seq_len, bos_id=bos_id, generators=chunk,
                                    temperature=TEMPERATURE).cpu())
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - start
    model.to("cpu")
    rows = torch.cat(ids).tolist()
    stats = {"ckpt_path": path, "sampling": "ancestral", "temperature": TEMPERATURE, "nfe": seq_len,
             "wall_time_s": wall, "tokens_per_s": num * seq_len / max(wall, 1e-9)}
    return ReferenceSamples(ids=rows, texts=loaded.tokenizer.decode_batch(rows), key=key, stats=stats)
