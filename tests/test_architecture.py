"""The package layout holds: no import cycle between mmbench's modules, and each stage imports only
the stages below it (docs/architecture.md), so a newcomer can read the flow bottom up."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mmbench"
LAYERS = ["errors", "files", "api", "nn", "objectives", "data", "training", "metrics", "evaluation", "results",
          "leaderboard", "experiments", "cli"]
"""Bottom to top. A module may import its own stage and those listed before it; `data.base` (the
dataset contract), `api` and the subset masks `encode(xs, subsets)` takes form the contract every
stage sees."""
CONTRACT = {"mmbench.data.base", "mmbench.api.model", "mmbench.api.registry", "mmbench.api.options",
            "mmbench.objectives.subsets"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """mmbench modules imported at module level (function-level and TYPE_CHECKING imports are lazy)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("mmbench")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mmbench") and node.level == 0:
            for alias in node.names:  # `from mmbench.nn import image` imports the module mmbench.nn.image
                sub = f"{node.module}.{alias.name}"
                found.add(sub if (PACKAGE.parent / sub.replace(".", "/")).with_suffix(".py").exists() else node.module)
    return found


GRAPH = {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def stage(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "mmbench"


def test_no_import_cycle():
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for child in GRAPH.get(module, ()):
            if child == module or child not in GRAPH or (module.startswith(child + ".") and child != "mmbench"):
                continue  # a package's own __init__ imported by its modules is not a cycle
            if state.get(child) == 1:
                pytest.fail("import cycle: " + " -> ".join(path[path.index(child):] + [child]))
            if child not in state:
                visit(child, path + [child])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if stage(m) in LAYERS))
def test_each_stage_imports_only_the_stages_below_it(module):
    level = LAYERS.index(stage(module))
    above = sorted(i for i in GRAPH[module] - CONTRACT if stage(i) in LAYERS and LAYERS.index(stage(i)) > level)
    assert not above, f"{module} imports {above}, a later stage"


def test_every_subpackage_ships_in_the_wheel():
    """setup.cfg lists the packages explicitly (the baselines ship under another name), so a new
    stage folder must be listed there too, or a wheel install would lack it."""
    import configparser

    config = configparser.ConfigParser()
    config.read(PACKAGE.parent / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    folders = {module_name(p) for p in PACKAGE.rglob("__init__.py")}
    assert folders | {"mmbench_baselines"} == listed
    assert "dataset_cards/*.md" in config["options.package_data"]["mmbench.data"]
