"""The import layers of dqn/ (README "Design"): who may import whom, no circles, imports at the
top of their files, no torch in the analysis, and modules of a readable size."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dqn"

# Bottom to top; the same table as the README's Design section.
LAYERS: dict[str, tuple[str, ...]] = {
    "foundation": ("paths", "schema", "env_facts", "names", "config", "provenance"),
    "core": ("seeding", "envs", "device", "footprint", "networks", "noisy", "optim", "priority",
             "replay", "nstep", "schedules", "agent", "records", "train", "plain"),
    "results": ("units", "tables", "lock", "store", "journal", "estimators", "decisions",
                "sequential", "adaptive_verdicts", "weights",
                "results", "overview", "scoring", "figure_style", "curve_figures",
                "score_figures", "plots", "report", "export",
                "expectations", "atlas_spec", "atlas_table", "atlas_figure"),
    "runner": ("recipes", "studyfile", "plan", "executors", "ray_executor", "runner", "adaptive",
               "sweep", "atlas", "play", "bench"),
    "entry": ("atlas_cli", "cli", "__main__"),
}
# What each layer may import at run time. The results layer (the store and the analysis) skips
# the core: the core is torch, and `make figures` / `make report` must not need it.
MAY_IMPORT: dict[str, tuple[str, ...]] = {
    "foundation": ("foundation",),
    "core": ("foundation", "core"),
    "results": ("foundation", "results"),
    "runner": ("foundation", "core", "results", "runner"),
    "entry": ("foundation", "core", "results", "runner", "entry"),
}
LAYER_OF = {module: layer for layer, modules in LAYERS.items() for module in modules}
ANALYSIS = LAYERS["results"]
MAX_LINES = 320  # "at most about 300"


def _modules() -> list[str]:
    return sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def _dqn_imports(module: str) -> list[tuple[str, bool, bool]]:
    """(imported dqn module, at the top of the file?, type-checking only?) for each import."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = []

    def visit(node: ast.AST, top: bool, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                visit(child, top, True)
                continue
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.module:
                if child.module == "dqn":
                    names = [f"dqn.{a.name}" for a in child.names]
                else:
                    names = [child.module]
            for name in names:
                if name.startswith("dqn."):
                    found.append((name.split(".")[1], top, typing_only))
            inner = top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef |
                                           ast.ClassDef)
            visit(child, inner, typing_only)

    visit(tree, True, False)
    return found


def test_every_module_has_a_layer() -> None:
    assert set(_modules()) == set(LAYER_OF)


@pytest.mark.parametrize("module", _modules())
def test_imports_go_to_allowed_layers_and_sit_at_the_top(module: str) -> None:
    allowed = MAY_IMPORT[LAYER_OF[module]]
    for imported, top, typing_only in _dqn_imports(module):
        assert top, f"dqn.{module} imports dqn.{imported} inside a function or class"
        if not typing_only:
            assert LAYER_OF[imported] in allowed, (
                f"dqn.{module} ({LAYER_OF[module]}) imports dqn.{imported} "
                f"({LAYER_OF[imported]}); {LAYER_OF[module]} may import {allowed}")


def test_no_import_circles() -> None:
    graph = {m: {i for i, _, typing_only in _dqn_imports(m) if not typing_only}
             for m in _modules()}
    state: dict[str, str] = {}

    def walk(m: str, path: list[str]) -> None:
        state[m] = "open"
        for n in sorted(graph[m]):
            assert state.get(n) != "open", "import circle: " + " -> ".join([*path, m, n])
            if n not in state:
                walk(n, [*path, m])
        state[m] = "done"

    for m in graph:
        if m not in state:
            walk(m, [])


@pytest.mark.parametrize("module", _modules())
def test_modules_stay_small(module: str) -> None:
    lines = len((PACKAGE / f"{module}.py").read_text().splitlines())
    assert lines <= MAX_LINES, f"dqn/{module}.py has {lines} lines: split it by job"


def _loaded_after_import(modules: tuple[str, ...]) -> set[str]:
    code = ("import sys\n" + "".join(f"import dqn.{m}\n" for m in modules)
            + "print(' '.join(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    return set(done.stdout.split())


def test_analysis_never_imports_torch() -> None:
    loaded = _loaded_after_import(ANALYSIS)
    assert "torch" not in loaded
    assert not {f"dqn.{m}" for m in LAYERS["core"] + LAYERS["runner"]} & loaded


def test_core_imports_nothing_from_the_runner_or_the_analysis() -> None:
    loaded = _loaded_after_import(LAYERS["core"])
    above = {f"dqn.{m}" for layer in ("results", "runner", "entry") for m in LAYERS[layer]}
    assert not above & loaded, above & loaded
