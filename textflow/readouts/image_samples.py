"""How image samples are reported (the smooth control, docs/autoencoders.md): continuous metrics against
held-out images (:mod:`textflow.evaluation.images`), training images as the reference row, and a PNG grid.
The continuous readout kind calls it (:meth:`textflow.readouts.ContinuousReadout.report_samples`)."""

from __future__ import annotations

from hydra.utils import instantiate

from textflow.evaluation.images import image_metrics, save_image_grid
from textflow.readouts.sample_report import SampleReport
from textflow.readouts.printing import print_image_table


def report_images(run, gen) -> SampleReport:
    """The report of ``gen`` (decoded images (N, P)) for ``run`` (:class:`textflow.sampling.setup.SamplingRun`)."""
    cfg, loaded, sampler = run.cfg, run.loaded, run.sampler
    data = instantiate(loaded.config.data)
    heldout = data.images("val")
    metrics = {"sampler": sampler.describe(), "label": sampler.label, "ckpt_path": str(loaded.path),
               "seed": cfg.seed, "nfe": gen.nfe, "wall_time_s": gen.wall_time, "device": str(run.device),
               **image_metrics(gen.ids, heldout)}
    if cfg.reference:
        train = data.images("train")
        metrics["reference/train"] = image_metrics(train[:len(gen.ids)], heldout)
    return SampleReport(metrics=metrics, samples_file="samples.png",
                        figures={"samples.png": lambda path: save_image_grid(gen.ids, path, title=sampler.label)},
                        show=lambda: print_image_table(metrics),
                        objects={"images": gen.ids, "generation": gen, "loaded": loaded})
