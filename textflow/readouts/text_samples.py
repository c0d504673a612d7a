"""How text samples are reported (docs/evaluation.md): decoded texts, judge perplexity and diversity
beside the held-out and shuffled-word reference rows (and the AR twin's, ``ar_twin=``), commitment
(CCI, arXiv 2606.30705) and, with ``diagnostics=true``, the sampler's own trajectory. The text readout
kinds call it (:meth:`textflow.readouts.TextReadout.report_samples`)."""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import OmegaConf

from textflow.diagnostics.cci import cci_from_commits
from textflow.diagnostics.trajectory import plot_trajectory
from textflow.noise import sample_seed
from textflow.readouts.continuations import continuation_metrics
from textflow.readouts.sample_report import SampleReport
from textflow.readouts.printing import print_report
from textflow.readouts.references import reference_rows


def report_text(run, gen, recorder=None, *, cci_readout: float) -> SampleReport:
    """The report of ``gen`` (a :class:`textflow.sampling.generate.Generation` of token ids) for ``run``
    (:class:`textflow.sampling.setup.SamplingRun`); ``cci_readout`` is the readout's structural CCI."""
    cfg, loaded, sampler = run.cfg, run.loaded, run.sampler
    seqs = gen.ids.tolist()
    texts = loaded.tokenizer.decode_batch(seqs)

    evaluate = instantiate(cfg.evaluation)
    eos = loaded.tokenizer.eos_token
    references, real = reference_rows(cfg, loaded, evaluate, seq_len=run.seq_len,
                                      extra=getattr(run, "extra_references", None))  # ar_twin=: its row
    ref_entropy = references.get("reference/heldout", {}).get("unigram_entropy")
    metrics = {"sampler": sampler.describe(), "label": sampler.label, "ckpt_path": str(loaded.path),
               "seed": cfg.seed, "seq_len": run.seq_len, "nfe": gen.nfe, "wall_time_s": gen.wall_time,
               "tokens_per_s": gen.tokens_per_second, "device": str(run.device),
               **evaluate(seqs, texts, eos=eos, reference_entropy=ref_entropy, reference_texts=real), **references}

    if cfg.get("readout_feed") is not None:  # the commit ablation's feed (AR readouts): part of what was run
        metrics["readout_feed"] = str(cfg.readout_feed)
    metrics.update(gen.extras)  # the sampler's own per-sample numbers (adaptive: injected_noise)
    metrics.update(continuation_metrics(run, gen, evaluate))  # conditional runs: continuations given prompts
    if gen.committed_step is not None:  # committing samplers: how much was decided before the final readout
        metrics["commit_fraction"] = float((gen.committed_step >= 0).float().mean())
    metrics["diag/cci"] = cci_from_commits(gen.committed_step, sampler.steps).value
    metrics["diag/cci_readout"] = cci_readout
    figures = {}
    if recorder is not None:
        metrics["trajectory"] = recorder.curve()
        figures["trajectory.png"] = lambda path: plot_trajectory(metrics["trajectory"], path, title=sampler.label)

    rows = [{"index": i, "seed": sample_seed(cfg.seed, i), "text": t, "token_ids": s, "sampler": sampler.describe(),
             "nfe": gen.nfe} for i, (t, s) in enumerate(zip(texts, seqs))]
    if run.prompts is not None:  # which prompt each sample followed, and which positions were given
        for row, r in zip(rows, run.prompts.rows(list(range(len(rows))))):
            row.update(prompt=run.prompts.templates[r], given=run.prompts.given[r])
    return SampleReport(metrics=metrics, rows=rows, samples_file="samples.jsonl", figures=figures,
                        text_table=[[r["index"], r["text"]] for r in rows],
                        show=lambda: print_report(texts, metrics, references, int(cfg.print_samples),
                                                  prompts=None if run.prompts is None else [r["prompt"] for r in rows]),
                        objects={"texts": texts, "generation": gen, "loaded": loaded,
                                 "config": OmegaConf.to_container(cfg)})
