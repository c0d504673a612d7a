"""A sampling run (sample.py) and the sweep report of ``-m`` runs, one job per module:

* ``run``: orchestration (checks, run-folder lock, generate, report, publish);
* ``checks``: the run's value checks; ``setup``: checkpoint -> the sampler's denoiser (``SamplingRun``);
* ``generate``: batch-invariant generation, decoded by the readout kind (:mod:`textflow.readouts`);
* ``outputs``: the publication of the kind's ``SampleReport`` (one unit, one run id; loggers; printout);
* ``report``: the sweep table and plots (``python -m textflow.sampling.report``).

How a kind's samples are reported (text with reference rows and judge metrics, or images) lives with
the kinds: :mod:`textflow.readouts.text_samples`, :mod:`textflow.readouts.image_samples`.
"""
