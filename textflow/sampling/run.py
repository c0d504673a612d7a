"""The sampling run behind ``sample.py`` (docs/samplers.md, docs/evaluation.md).

load checkpoint (config + tokenizer + weights) -> sampler from conf/sampler -> batch-invariant
generation -> decode -> metrics beside held-out real text -> samples.jsonl + metrics.json in the run
folder (one unit, one run id) and to the configured loggers.
"""


from __future__ import annotations

import sys
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from textflow.checkpoint import load_run
from textflow.cli import instantiate_dict, pick_device
from textflow.dashboards import log_metrics, log_text_table
from textflow.diagnostics.cci import cci_from_commits, cci_readout
from textflow.diagnostics.trajectory import TrajectoryRecorder, plot_trajectory
from textflow.checks import require_int
from textflow.errors import ConfigError, check_choice
from textflow.evaluation.evaluate import shuffle_words
from textflow.evaluation.images import image_metrics, save_image_grid
from textflow.evaluation.judge import truncate_at_eos
from textflow.sampling.generate import generate
from textflow.io import json_text, jsonl_text
from textflow.noise import sample_seed
from textflow.sampling.reference import heldout_blocks
from textflow.runs.lock import RunFolderLock, global_rank
from textflow.runs.outputs import new_run_id, write_run_outputs


def set_readout_feed(autoencoder, feed: str) -> None:
    """``readout_feed=soft``: the commit ablation of an AR decoder (science.md §4, CCI)."""
    inner = getattr(autoencoder, "inner", autoencoder)
    if not hasattr(inner, "feed"):
        raise ConfigError(f"readout_feed={feed!r} needs an autoregressive readout (autoencoder=ar); this "
                          f"checkpoint's autoencoder is {type(inner).__name__}")
    check_choice("readout_feed", feed, ("token", "soft"))
    inner.feed = feed


def check_counts(cfg: DictConfig) -> None:
    for key in ("num_samples", "batch_size"):
        require_int(key, cfg[key], low=1)
    require_int("seed", cfg.seed, low=0)
    require_int("print_samples", cfg.print_samples, low=0)
    if cfg.precision not in ("32", "bf16", 32):
        raise ConfigError(f"precision={cfg.precision!r} is not valid; choose one of: 32, bf16")


def check_steps_limit(steps: int, limit) -> None:
    limit = require_int("max_sampler_steps", limit, low=1)
    if steps > limit:
        raise ConfigError(f"sampler.steps={steps} is above max_sampler_steps={limit} (a guard against runs that "
                          f"take hours); pass max_sampler_steps={steps} to run it anyway")


def check_seq_len(value, trained: int) -> int:
    """``seq_len=null`` is the training length; a shorter integer is allowed, a longer one is not."""
    if value is None:
        return int(trained)
    return require_int("seq_len", value, low=1, high=int(trained), hint=f" (the checkpoint was trained on "
                       f"{trained}-token blocks; null = {trained})")


REPORT_KEYS = ["gen_ppl", "unigram_entropy", "distinct_1", "distinct_2", "distinct_3", "repetition_4", "self_bleu",
               "mauve"]


def print_report(texts: list[str], metrics: dict, references: dict[str, dict], n_show: int) -> None:
    for i, text in enumerate(texts[:n_show]):
        print(f"--- sample {i} ---\n{text.strip()}")
    columns = {"samples": metrics, **{k.split("/", 1)[1]: v for k, v in references.items()}}
    print("\n" + f"{'metric':<18}" + "".join(f"{name:>16}" for name in columns))
    for key in REPORT_KEYS:
        if any(key in col for col in columns.values()):
            cells = "".join(f"{col[key]:>16.4g}" if key in col else f"{'-':>16}" for col in columns.values())
            print(f"{key:<18}{cells}")
    if "mode_collapse" in metrics:
        print(f"{'mode_collapse':<18}{str(metrics['mode_collapse']):>16}")
    print(f"{'nfe':<18}{metrics['nfe']:>16d}\n{'tokens/s':<18}{metrics['tokens_per_s']:>16.1f}")


_REFERENCE_CACHE: dict[tuple, tuple] = {}  # a sweep scores its reference texts once, not once per point


def reference_rows(cfg: DictConfig, loaded, evaluate, *, seq_len: int) -> tuple[dict[str, dict], list[str]]:
    """Held-out text and its shuffled-word version, evaluated like the samples (memoised per process)."""
    if not cfg.reference:
        return {}, []
    key = (str(loaded.path), seq_len, cfg.num_samples, cfg.seed, str(OmegaConf.to_yaml(cfg.evaluation)))
    if key not in _REFERENCE_CACHE:
        eos = loaded.tokenizer.eos_token
        blocks = heldout_blocks(loaded.config.data.corpus, loaded.tokenizer, seq_len=seq_len, num=cfg.num_samples)
        refs: dict[str, dict] = {}
        real = loaded.tokenizer.decode_batch(blocks) if blocks else []
        if blocks:
            refs["reference/heldout"] = evaluate(blocks, real, eos=eos)
            shuffled = shuffle_words([truncate_at_eos(t, eos) for t in real], seed=cfg.seed)
            refs["reference/shuffled"] = evaluate(loaded.tokenizer.encode_batch(shuffled), shuffled, eos=eos,
                                                  reference_texts=real)
        _REFERENCE_CACHE[key] = (refs, real)
    return _REFERENCE_CACHE[key]


def run(cfg: DictConfig) -> tuple[dict, dict]:
    check_counts(cfg)
    sampler = instantiate(cfg.sampler)  # bad sampler knobs fail here, before loading anything
    check_steps_limit(sampler.steps, cfg.max_sampler_steps)
    with RunFolderLock(cfg.dirs.output_dir, rank=global_rank()):  # one live run per folder
        return sample_run(cfg, sampler)


def sample_run(cfg: DictConfig, sampler) -> tuple[dict, dict]:
    loaded = load_run(cfg.ckpt_path)
    device = pick_device(cfg.device)
    loaded.module.to(device)
    student_steps = sampler.steps if sampler.weights == "student" else None
    denoiser = loaded.denoiser(use_ema=cfg.use_ema, student_steps=student_steps)
    if str(cfg.precision) == "bf16" and device.type == "cuda":
        denoiser.autocast_dtype = torch.bfloat16
    if cfg.compile:
        denoiser.backbone.compile()
    if cfg.readout_feed is not None:
        set_readout_feed(denoiser.autoencoder, cfg.readout_feed)
    seq_len = check_seq_len(cfg.seq_len, loaded.info["seq_len"])

    categorical = denoiser.autoencoder.categorical
    recorder = TrajectoryRecorder(denoiser.path) if cfg.diagnostics and categorical else None
    with tqdm(total=cfg.num_samples, desc=f"sampling {sampler.label}", unit="seq", file=sys.stderr) as bar:
        gen = generate(denoiser, sampler, num_samples=cfg.num_samples, seq_len=seq_len, seed=cfg.seed,
                       batch_size=cfg.batch_size, device=device, progress=bar.update, callback=recorder)
    if not categorical:
        return run_images(cfg, loaded, sampler, gen, device=device)
    seqs = gen.ids.tolist()
    texts = loaded.tokenizer.decode_batch(seqs)

    evaluate = instantiate(cfg.evaluation)
    eos = loaded.tokenizer.eos_token
    references, real = reference_rows(cfg, loaded, evaluate, seq_len=seq_len)
    ref_entropy = references.get("reference/heldout", {}).get("unigram_entropy")
    metrics = {"sampler": sampler.describe(), "label": sampler.label, "ckpt_path": str(loaded.path),
               "seed": cfg.seed, "seq_len": seq_len, "nfe": gen.nfe, "wall_time_s": gen.wall_time,
               "tokens_per_s": gen.tokens_per_second, "device": str(device),
               **evaluate(seqs, texts, eos=eos, reference_entropy=ref_entropy, reference_texts=real), **references}

    if gen.committed_step is not None:  # committing samplers: how much was decided before the final readout
        metrics["commit_fraction"] = float((gen.committed_step >= 0).float().mean())
    metrics["diag/cci"] = cci_from_commits(gen.committed_step, sampler.steps).value
    metrics["diag/cci_readout"] = cci_readout(denoiser.autoencoder, seq_len)
    if recorder is not None:
        metrics["trajectory"] = recorder.curve()

    out_dir = Path(cfg.dirs.output_dir)
    run_id = metrics["run_id"] = new_run_id()  # ties samples.jsonl to metrics.json
    rows = [{"run_id": run_id, "index": i, "seed": sample_seed(cfg.seed, i), "text": t, "token_ids": s,
             "sampler": sampler.describe(), "nfe": gen.nfe} for i, (t, s) in enumerate(zip(texts, seqs))]
    write_run_outputs(out_dir, {"samples.jsonl": jsonl_text(rows), "metrics.json": json_text(metrics) + "\n"},
                      run_id=run_id)

    loggers = instantiate_dict(cfg.get("logger"))
    flat = {f"sample/{k}": v for k, v in metrics.items() if isinstance(v, (int, float))}
    log_metrics(loggers, flat)
    log_text_table(loggers, f"samples/{sampler.label}", ["index", "text"], [[r["index"], r["text"]] for r in rows])

    if recorder is not None:
        plot_trajectory(metrics["trajectory"], out_dir / "trajectory.png", title=sampler.label)
    print_report(texts, metrics, references, int(cfg.print_samples))
    print(f"[textflow] wrote {out_dir / 'samples.jsonl'} and {out_dir / 'metrics.json'}")
    return metrics, {"texts": texts, "generation": gen, "loaded": loaded, "config": OmegaConf.to_container(cfg)}


def run_images(cfg: DictConfig, loaded, sampler, gen, *, device) -> tuple[dict, dict]:
    """The smooth image control: continuous metrics against held-out images, and a sample grid."""
    data = instantiate(loaded.config.data)
    heldout = data.images("val")
    metrics = {"sampler": sampler.describe(), "label": sampler.label, "ckpt_path": str(loaded.path),
               "seed": cfg.seed, "nfe": gen.nfe, "wall_time_s": gen.wall_time, "device": str(device),
               **image_metrics(gen.ids, heldout)}
    if cfg.reference:
        train = data.images("train")
        metrics["reference/train"] = image_metrics(train[:len(gen.ids)], heldout)
    out_dir = Path(cfg.dirs.output_dir)
    metrics["run_id"] = new_run_id()
    write_run_outputs(out_dir, {"metrics.json": json_text(metrics) + "\n"}, run_id=metrics["run_id"])
    save_image_grid(gen.ids, out_dir / "samples.png", title=sampler.label)
    log_metrics(instantiate_dict(cfg.get("logger")),
                {f"sample/{k}": v for k, v in metrics.items() if isinstance(v, (int, float))})
    keys = [k for k, v in metrics.items() if isinstance(v, float) and k != "wall_time_s"]
    ref = metrics.get("reference/train", {})
    print(f"{'metric':<18}{'samples':>12}{'train images':>14}")
    print("\n".join(f"{k:<18}{metrics[k]:>12.4g}{ref.get(k, float('nan')):>14.4g}" for k in keys))
    print(f"[textflow] wrote {out_dir / 'samples.png'} and {out_dir / 'metrics.json'}")
    return metrics, {"images": gen.ids, "generation": gen, "loaded": loaded}
