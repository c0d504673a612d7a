"""Training objectives of the flow stage (docs/training.md, "Objectives"): the flow-matching loss with
its self-conditioning, scale-token and conditioning variants, and ELF's decoder objective. The
LightningModule (:mod:`textflow.training.flow`) draws the step's randomness and calls these."""

from textflow.objectives.decoder import decoder_loss
from textflow.objectives.flow_matching import flow_matching_loss, free_position_mse, sample_guidance_scales

__all__ = ["decoder_loss", "flow_matching_loss", "free_position_mse", "sample_guidance_scales"]
