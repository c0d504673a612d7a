"""Shared fixtures: real configs composed with tiny overrides (docs/architecture.md, testing)."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# the oneDNN inference linears with the separate GELU, not the per-machine choice
# (textflow/kernels/calibration.py): every machine runs the same path, and no test writes the calibration
# into the user's cache
os.environ.setdefault("TEXTFLOW_CPU_LINEAR", "onednn")
os.environ.setdefault("TEXTFLOW_CPU_GELU", "separate")

import pytest  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
FIXTURE_CORPUS = ROOT / "tests" / "fixtures" / "corpus"

# one thread per worker when pytest-xdist runs the suite on both cores (README test command)
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, torch.get_num_threads()))


def compose_config(name: str, overrides: list[str]) -> DictConfig:
    """Compose ``conf/<name>.yaml`` exactly as the entry point would (hydra config included)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=name, overrides=overrides, return_hydra_config=True)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One tokenizer / token-id cache for the whole session (BPE is trained once)."""
    return tmp_path_factory.mktemp("textflow-cache")


def tiny_train_overrides(out_dir: Path, cache: Path) -> list[str]:
    return [
        "debug=fast",
        "data=fixture",
        f"dirs.root_dir={ROOT}",
        f"dirs.cache_dir={cache}",
        f"dirs.output_dir={out_dir}",
        f"hydra.run.dir={out_dir}",
    ]


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.slow`` tests run only with TEXTFLOW_SLOW=1 (pyproject.toml's marker)."""
    if os.environ.get("TEXTFLOW_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set TEXTFLOW_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
