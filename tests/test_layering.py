"""The architecture as the code has it: the import layers and the config-group table of
docs/architecture.md (docs/architecture.md, "Layers" and "Config groups")."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import CONF, ROOT

ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()


def test_the_import_layers_hold():
    """import-linter's layers contract (pyproject.toml [tool.importlinter]): no module imports upward."""
    proc = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                           "lint_imports_command()"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 kept, 0 broken" in proc.stdout


def _group_table() -> dict[str, tuple[list[str], list[str]]]:
    """group -> (options, packages) from the "Config groups" table of docs/architecture.md."""
    section = ARCHITECTURE.split("## Config groups", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        group = cells[0].strip("`")
        options = re.findall(r"`([\w/]+)`", cells[1])
        packages = re.findall(r"`(textflow[\w.]*|lightning[\w.]*|torch[\w.]*)`", cells[2])
        rows[group] = (options, packages)
    return rows


def test_the_group_table_lists_every_config_group_and_option():
    table = _group_table()
    groups = sorted(p.relative_to(CONF).as_posix() for p in CONF.rglob("*") if p.is_dir())
    assert sorted(table) == groups
    for group, (options, _) in table.items():
        on_disk = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
        assert sorted(options) == on_disk, group


@pytest.mark.parametrize("group", sorted(_group_table()))
def test_each_group_maps_to_its_package_in_one_hop(group):
    """Every `_target_` a group's files name lives under the package its table row names."""
    _, packages = _group_table()[group]
    for f in (CONF / group).glob("*.yaml"):
        own = [line for line in f.read_text().splitlines() if re.match(r"^_target_:", line)]
        for line in own:
            target = line.split(":", 1)[1].split("#")[0].strip()
            assert any(target == p or target.startswith(p + ".") for p in packages), (f.name, target, packages)
