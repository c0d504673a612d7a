"""PNG files a run wrote (its figures) sent to the loggers that take images (docs/dashboards.md):
``WandbLogger.log_image`` (``media/images`` of the run) and TensorBoard's ``add_image`` (the Images tab).
The same key on every point of a sweep puts the points' figures side by side in one panel."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from textflow.dashboards import kind_of


def png_pixels(path: str | Path):
    """The RGB pixels of a PNG file as a ``(H, W, 3)`` uint8 array."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def log_image_files(loggers: Iterable, images: Mapping[str, str | Path], step: int = 0) -> None:
    """Each ``key -> PNG path`` in ``images`` to every image-taking logger at ``step``."""
    for logger in loggers:
        kind = kind_of(logger)
        for key, path in images.items():
            if kind == "WandbLogger":
                logger.log_image(key=key, images=[str(path)], step=step)
            elif kind == "TensorBoardLogger":
                logger.experiment.add_image(key, png_pixels(path), global_step=step, dataformats="HWC")
