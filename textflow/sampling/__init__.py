"""A sampling run (sample.py): load a checkpoint, generate with a registry sampler, evaluate beside
reference rows, write the run's outputs and print the report; plus the sweep report of ``-m`` runs."""
