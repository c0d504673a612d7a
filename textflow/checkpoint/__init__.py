"""Self-describing checkpoints: build a model from its config, and load one back safely.

A textflow checkpoint is a Lightning ``.ckpt`` whose ``"textflow"`` entry holds plain data only:
``config`` (the resolved run config as YAML), ``tokenizer`` (the tokenizer's JSON), ``vocab_size``,
``seq_len``, ``kind`` and ``format``. Reading is done in one place (:mod:`.files`): weights-only
``torch.load``, a config that may name only textflow component classes (:mod:`.safe_config`), and
finite weights. docs/reliability.md states the guarantees.
"""

from textflow.checkpoint.build import FORMAT_VERSION, build_autoencoder, build_module, make_run_info
from textflow.checkpoint.files import check_same_vocabulary, checkpoint_config, nonfinite_tensors, read_checkpoint
from textflow.checkpoint.load import LoadedRun, load_run
from textflow.checkpoint.safe_config import ALLOWED_TARGETS, parse_checkpoint_config

__all__ = ["ALLOWED_TARGETS", "FORMAT_VERSION", "LoadedRun", "build_autoencoder", "build_module",
           "check_same_vocabulary", "checkpoint_config", "load_run", "make_run_info", "nonfinite_tensors", "parse_checkpoint_config",
           "read_checkpoint"]
