"""Pre-flight: check the command line before Hydra composes, creates or writes anything.

``train.py`` and ``sample.py`` call :func:`preflight` first. It parses the overrides with Hydra's own
parser, composes every point of a ``-m`` sweep with Hydra's compose API, and turns each class of bad
input into one line on stderr and exit status 2 (docs/reliability.md):

* an unknown option of a config group (``sampler=foo``), with the group's options;
* an unknown key (``foo=1``), and a new key added with ``+``/``++`` outside the open component dicts
  (``callbacks``, ``logger``) and Lightning's ``Trainer`` arguments;
* a required value left at ``???`` (``data=local`` without ``data.corpus.train_glob``);
* a ``nan``/``inf`` anywhere in the config, and a value whose type breaks its default's
  (``seed=1.5`` or ``seed=abc`` where the default is the integer 0);
* an output folder that cannot be created or written, or that a live run holds.
"""

from __future__ import annotations

import difflib
import inspect
import itertools
import math
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from textflow.cli import one_line
from textflow.errors import ConfigError
from textflow.runs.lock import busy_message, folder_busy, global_rank

OPEN_ROOTS = ("callbacks", "logger")  # dicts of components: researchers add their own with +key
MAX_SWEEP_POINTS = 64  # points composed to check a sweep (the first ones, in Hydra's order)


def _options(group_dir: Path) -> list[str]:
    return sorted(p.stem for p in group_dir.glob("*.yaml"))


def _values(override) -> list[Any]:
    if override.is_sweep_override():
        if override.is_interval_sweep():  # Optuna's interval(a, b): both ends are checked
            return [override.value().start, override.value().end]
        try:
            return list(override.sweep_string_iterator())
        except Exception:  # noqa: BLE001 - interval sweeps (Optuna) have no finite list
            return []
    return [override.value()]


def check_groups(overrides, conf_dir: Path) -> None:
    """Every group option named on the command line exists (``sampler=foo`` is refused)."""
    for o in overrides:
        group_dir = conf_dir / o.key_or_group
        if o.key_or_group.startswith("hydra") or not group_dir.is_dir() or o.is_delete():
            continue
        for value in _values(o):
            if value is not None and str(value) != "null" and not (group_dir / f"{value}.yaml").is_file():
                key = o.get_key_element().lstrip("+")
                raise ConfigError(f"{key}={value!r} is not valid; choose one of: {', '.join(_options(group_dir))}")


def sweep_points(overrides) -> list[list[str]]:
    """The override lists of the sweep's points (a plain run is one point)."""
    axes: list[list[str]] = []
    for o in overrides:
        if o.is_sweep_override():
            values = _values(o)
            key = o.get_key_element()
            axes.append([f"{key}={v}" for v in values] or [o.input_line])
        else:
            axes.append([o.input_line])
    return [list(p) for p in itertools.islice(itertools.product(*axes), MAX_SWEEP_POINTS)]


def _compose(conf_dir: Path, config_name: str, overrides: list[str]) -> DictConfig:
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            return compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def _keys_near(cfg: DictConfig, key: str) -> str:
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    if not isinstance(node, DictConfig):
        return ""
    names = [str(k) for k in node.keys()]
    close = difflib.get_close_matches(leaf, names, n=3)
    if close:
        return f"; did you mean {', '.join((parent + '.' if parent else '') + c for c in close)}?"
    return f"; keys there: {', '.join(sorted(names)[:12])}"


def _composition_error(err: Exception, overrides: list[str], base: DictConfig | None) -> ConfigError:
    text = str(err)
    if text.startswith("Could not override '"):
        key = text.split("'")[1]
        near = _keys_near(base, key) if base is not None else ""
        return ConfigError(f"{key} is not a key textflow reads{near}")
    first = [line for line in text.splitlines() if line.strip()][:2]
    cause = err.__cause__
    if cause is not None and str(cause).strip():
        first.append(str(cause).strip().splitlines()[0])
    return ConfigError(f"invalid override ({' '.join(overrides)}): {one_line(' '.join(first))[:300]}")


def _trainer_args() -> set[str]:
    import lightning

    return set(inspect.signature(lightning.Trainer.__init__).parameters) - {"self"}


def check_additions(overrides, base: DictConfig) -> None:
    """``+key``/``++key`` may only add components to ``callbacks``/``logger`` or Trainer arguments."""
    for o in overrides:
        if not (o.is_add() or o.is_force_add()) or o.key_or_group.startswith("hydra"):
            continue
        key = o.key_or_group if o.package is None else f"{o.package}.{o.key_or_group}"
        if OmegaConf.select(base, key, default=None) is not None or key.split(".")[0] in OPEN_ROOTS:
            continue
        parts = key.split(".")
        if parts[0] == "trainer" and len(parts) == 2 and parts[1] in _trainer_args():
            continue
        raise ConfigError(f"{o.input_line} adds a key textflow does not read{_keys_near(base, key)} (new keys "
                          f"are allowed under {', '.join(OPEN_ROOTS)} and for Trainer arguments)")


def _leaves(node: Any, where: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, f"{where}.{k}" if where else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, f"{where}[{i}]")
    else:
        yield where, node


def check_values(cfg: DictConfig, defaults: DictConfig, overrides) -> None:
    """No ``???`` left, no non-finite float anywhere, and no override that breaks its default's type."""
    plain = OmegaConf.to_container(cfg, resolve=False)
    plain.pop("hydra", None)
    for key, value in _leaves(plain):
        if value == "???":
            raise ConfigError(f"{key} is required and has no default; set it on the command line ({key}=VALUE)")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key}={value} is invalid; it must be a finite number")
    for o in overrides:
        if o.is_delete() or o.key_or_group.startswith("hydra") or o.key_or_group in ("", None):
            continue
        key = o.key_or_group
        default = OmegaConf.select(defaults, key, default=None, throw_on_resolution_failure=False)
        value = OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
        if value is None or default is None or _lightning_owned(defaults, key):
            continue
        if _type_breaks(default, value):
            kind = "true or false" if isinstance(default, bool) else \
                "an integer" if isinstance(default, int) else "a number"
            raise ConfigError(f"{key}={value!r} is invalid; it must be {kind} (its default is {default!r})")


def _type_breaks(default: Any, value: Any) -> bool:
    if isinstance(default, bool):
        return not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, bool) or not isinstance(value, int)
    if isinstance(default, float):
        return isinstance(value, bool) or not isinstance(value, (int, float))
    return False


def _lightning_owned(cfg: DictConfig, key: str) -> bool:
    """True under a node that Lightning builds (Trainer, its callbacks and loggers accept their own types)."""
    parts = key.split(".")
    for i in range(len(parts) - 1, 0, -1):
        node = OmegaConf.select(cfg, ".".join(parts[:i]), default=None, throw_on_resolution_failure=False)
        if isinstance(node, DictConfig) and str(node.get("_target_", "")).startswith("lightning."):
            return True
    return False


def check_output_folder(folder: str, *, key: str, held_check: bool) -> None:
    """The run folder can be created and written, and no live run holds it."""
    path = Path(folder).expanduser()
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ConfigError(f"{key}={folder} cannot be created: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}={folder} cannot be written: no write permission in {probe}")
    if held_check:
        holder = folder_busy(path)
        if holder:
            raise ConfigError(busy_message(path, holder))


def check_command_line(conf_dir: Path, config_name: str, argv: list[str]) -> None:
    """Raise :class:`ConfigError` for the first bad input on ``argv`` (see the module docstring)."""
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = get_args_parser()

    def refuse(message: str):
        raise ConfigError(f"could not parse the command line: {message} (flags such as -m go before the overrides)")

    parser.error = refuse
    args = parser.parse_args(argv)
    if args.help or args.hydra_help or args.info or args.shell_completion or args.config_path or args.config_dir:
        return
    config_name = args.config_name or config_name
    try:
        overrides = OverridesParser.create().parse_overrides(args.overrides)
    except Exception as err:  # noqa: BLE001 - Hydra's parse errors are multi-line
        raise ConfigError(f"could not parse the command line: {one_line(str(err))[:300]}") from None
    check_groups(overrides, conf_dir)
    for point in sweep_points(overrides):
        try:
            defaults = _compose(conf_dir, config_name, [line for line in point if _is_group_line(line, conf_dir)])
            cfg = _compose(conf_dir, config_name, point)
        except Exception as err:  # noqa: BLE001 - Hydra's composition errors become one line
            found = _composition_error(err, point, _safe_defaults(conf_dir, config_name))
            raise ConfigError(f"{found} (sweep point: {' '.join(point)})" if args.multirun else str(found)) from None
        try:
            check_additions(overrides, defaults)
            check_values(cfg, defaults, overrides)
        except ConfigError as err:
            raise ConfigError(f"{err} (sweep point: {' '.join(point)})" if args.multirun else str(err)) from None
        mode = "sweep" if args.multirun else "run"
        folder = OmegaConf.select(cfg, f"hydra.{mode}.dir")
        # DDP ranks > 0 re-run the script inside the folder their rank 0 holds
        check_output_folder(str(folder), key=f"hydra.{mode}.dir", held_check=not args.multirun and global_rank() == 0)


def _safe_defaults(conf_dir: Path, config_name: str) -> DictConfig | None:
    try:
        return _compose(conf_dir, config_name, [])
    except Exception:  # noqa: BLE001 - only used for spelling suggestions
        return None


def _is_group_line(line: str, conf_dir: Path) -> bool:
    key = line.split("=", 1)[0].lstrip("+~").split("@", 1)[0]
    return (conf_dir / key).is_dir()


def preflight(conf_dir: Path, config_name: str, argv: list[str] | None = None) -> None:
    """Check ``argv`` (default ``sys.argv[1:]``); on bad input print one line and exit with status 2."""
    try:
        check_command_line(Path(conf_dir), config_name, list(sys.argv[1:] if argv is None else argv))
    except ConfigError as err:
        print(f"error: {one_line(str(err))}", file=sys.stderr)
        sys.exit(2)


def launcher_folder_error(argv: list[str], env: Mapping[str, str]) -> str | None:
    """Why this command cannot run under its launcher, or None. Under an external launcher (torchrun,
    srun) every process composes its own config, and the default run folder is named by each process's
    clock (conf/hydra/default.yaml), so two processes can name two folders: the folder must be given.
    (Lightning's own DDP hands its processes its rank 0's folder.)"""
    slurm_tasks = env.get("SLURM_NTASKS") if "SLURM_PROCID" in env else None
    processes = int(env.get("WORLD_SIZE") or slurm_tasks or 1)
    key = "hydra.sweep.dir" if {"-m", "--multirun"} & set(argv) else "hydra.run.dir"
    if processes < 2 or any(arg.lstrip("+").startswith(f"{key}=") for arg in argv):
        return None
    return (f"{processes} processes were started (torchrun, srun) and each would name its own run folder by its "
            f"clock; give them one: {key}=outputs/train/runs/<name> (docs/training.md, \"Past one machine\")")
