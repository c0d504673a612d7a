"""A checkpoint's config is data: the only place checkpoint text becomes a config (docs/reliability.md).

A config read from a checkpoint may only name the component classes that ``conf/`` builds for a
stored run (autoencoder, backbone, path, module, data), matched by their exact dotted path: never a
prefix, never a module attribute, never a function. Every key at every depth is checked, lists
included. Hydra's other special keys (``_args_``, ``_convert_``, ``_recursive_``, ...) are refused;
``_partial_`` is accepted only on the optimizer classes, which ``configure_optimizers`` finishes with
the parameters. The YAML is read with ``yaml.safe_load`` (plain data only) and any ``${...}``
interpolation is refused before OmegaConf sees the text, so no resolver (``oc.env``, custom ones)
ever runs on checkpoint text.
"""

from __future__ import annotations

from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from textflow.errors import CheckpointError

# Exact dotted paths of the classes conf/ instantiates for the groups a checkpoint stores, mapped to
# whether the node may carry ``_partial_: true``. A test checks this table against conf/ both ways.
ALLOWED_TARGETS: dict[str, bool] = {
    "textflow.autoencoders.EmbeddingAutoencoder": False,
    "textflow.autoencoders.FrozenEmbeddingAutoencoder": False,
    "textflow.autoencoders.ImageAutoencoder": False,
    "textflow.autoencoders.LatentARAutoencoder": False,
    "textflow.autoencoders.NormalizedAutoencoder": False,
    "textflow.autoencoders.OneHotAutoencoder": False,
    "textflow.autoencoders.TransformerVAE": False,
    "textflow.backbones.DiT": False,
    "textflow.conditioning.ConditionMasks": False,
    "textflow.paths.LinearPath": False,
    "textflow.paths.VPPath": False,
    "textflow.training.LatentFlowModule": False,
    "textflow.training.MuonWithAdamW": True,
    "textflow.training.WarmupCosine": False,
    "textflow.time.UniformTime": False,
    "textflow.time.LogitNormalTime": False,
    "textflow.time.RandomLogitNormalTime": False,
    "textflow.time.ArgmaxAccuracyTime": False,
    "textflow.data.TextDataModule": False,
    "textflow.data.digits.DigitsDataModule": False,
    "textflow.data.LocalText": False,
    "textflow.data.Shakespeare": False,
    "textflow.data.HFDataset": False,
    "textflow.data.TrainedBPE": False,
    "textflow.data.GPT2BPE": False,
    "textflow.data.Pretrained": False,
    "torch.optim.AdamW": True,
}

# Checkpoints written before the training / time packages existed name these exact paths; each is
# renamed to its new home before checking (data in, data out: nothing is imported or called).
LEGACY_TARGETS: dict[str, str] = {
    "textflow.module.LatentFlowModule": "textflow.training.LatentFlowModule",
    "textflow.optim.warmup_cosine": "textflow.training.WarmupCosine",  # was a _partial_ function
    "textflow.timegrids.UniformTime": "textflow.time.UniformTime",
    "textflow.timegrids.LogitNormalTime": "textflow.time.LogitNormalTime",
    "textflow.timegrids.RandomLogitNormalTime": "textflow.time.RandomLogitNormalTime",
}

MAX_NODES = 100_000  # a YAML alias bomb or a huge config is refused, not walked
MAX_DEPTH = 64
_SCALARS = (str, int, float, bool, type(None))


def _refuse(source: str, what: str) -> CheckpointError:
    return CheckpointError(f"refusing {source}: {what}; a checkpoint config may only name textflow component "
                           "classes (docs/reliability.md)")


class _Walker:
    def __init__(self, source: str):
        self.source, self.nodes = source, 0

    def walk(self, node: Any, where: str, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise _refuse(self.source, f"its config is larger than {MAX_NODES} nodes or deeper than {MAX_DEPTH}")
        if isinstance(node, dict):
            self.mapping(node, where, depth)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                self.walk(item, f"{where}[{i}]", depth + 1)
        elif isinstance(node, str):
            if "${" in node:
                raise _refuse(self.source, f"{where or '<root>'}={node[:80]!r} is an interpolation (never resolved "
                                           "from checkpoint text)")
        elif not isinstance(node, _SCALARS):
            raise _refuse(self.source, f"{where or '<root>'} holds a {type(node).__name__}, not plain data")

    def mapping(self, node: dict, where: str, depth: int) -> None:
        target = node.get("_target_")
        if "_target_" in node and (not isinstance(target, str) or target not in ALLOWED_TARGETS):
            here = f"{where}._target_" if where else "_target_"
            raise _refuse(self.source, f"{here}={target!r} is not a textflow component class")
        for key, value in node.items():
            if not isinstance(key, str):
                raise _refuse(self.source, f"{where or '<root>'} has a non-string key {key!r}")
            here = f"{where}.{key}" if where else key
            if "${" in key:
                raise _refuse(self.source, f"key {here!r} is an interpolation")
            if key == "_target_":
                continue  # checked above, before any other key
            if key == "_partial_":
                if value is not False and not (value is True and ALLOWED_TARGETS.get(target, False)):
                    raise _refuse(self.source, f"{here}={value!r} on {target!r} (only optimizers may be partial)")
            elif key.startswith("_"):
                raise _refuse(self.source, f"{here} is a Hydra special key that checkpoints may not use")
            else:
                self.walk(value, here, depth + 1)


def migrate_legacy_targets(data: Any, *, source: str) -> Any:
    """Rename the exact legacy ``_target_`` strings of :data:`LEGACY_TARGETS` in place (the legacy LR
    schedule loses its ``_partial_``: the new one is a class called with the optimizer). Walks at most
    :data:`MAX_NODES` nodes, so a YAML alias bomb is refused here too."""
    stack, seen = [data], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise _refuse(source, f"its config is larger than {MAX_NODES} nodes")
        if isinstance(node, dict):
            target = node.get("_target_")
            if isinstance(target, str) and target in LEGACY_TARGETS:
                node["_target_"] = LEGACY_TARGETS[target]
                if target == "textflow.optim.warmup_cosine":
                    node.pop("_partial_", None)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return data


def check_config_data(data: Any, *, source: str) -> None:
    """Raise :class:`CheckpointError` unless ``data`` (plain dicts/lists/scalars) is a safe config."""
    if not isinstance(data, dict):
        raise _refuse(source, f"its config is a {type(data).__name__}, not a mapping")
    _Walker(source).walk(data, "", 0)


def parse_checkpoint_config(text: Any, *, source: str) -> DictConfig:
    """The validated config of a checkpoint's YAML ``text`` (``source`` names it in errors)."""
    if not isinstance(text, str):
        raise _refuse(source, f"its config is a {type(text).__name__}, not YAML text")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise _refuse(source, f"its config is not plain YAML ({str(err).splitlines()[0][:120]})") from None
    check_config_data(migrate_legacy_targets(data, source=source), source=source)
    return OmegaConf.create(data)
