"""The layers of dqn/ (dqn/__init__.py, docs/design.md), read from the package names: every
module sits in a layer package, imports only packages below it, at the top of its file; no
circles; no torch in the analysis; package __init__ files say their job and import nothing; and
modules of a readable size."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dqn"

# Bottom to top: each package and the packages it may import at run time (itself included).
# The analysis packages (stats .. report) skip the core: the core is torch, and `make figures`
# / `make report` must not need it. Only run and cli join the two sides.
ANALYSIS = ("base", "stats", "store", "analysis", "figures", "atlas", "report")
MAY_IMPORT: dict[str, tuple[str, ...]] = {
    "base": ("base",),
    "stats": ("stats",),
    "core": ("base", "core"),
    "store": ("base", "stats", "store"),
    "analysis": ("base", "stats", "store", "analysis"),
    "figures": ("base", "stats", "store", "analysis", "figures"),
    "atlas": ("base", "stats", "store", "analysis", "figures", "atlas"),
    "report": ("base", "stats", "store", "analysis", "figures", "atlas", "report"),
    "run": ("base", "stats", "core", *ANALYSIS[2:], "run"),
    "cli": (*ANALYSIS, "core", "run", "cli"),
}
PACKAGES = tuple(MAY_IMPORT)
# The only modules at the top of dqn/: the entry point and the public aliases.
# dqn/__init__ imports base.numerics only, to pin the CPU numerics before torch computes
TOP_LEVEL = {"__init__": ("base",), "__main__": ("cli",), "config": ("base",), "train": ("core",)}
MAX_LINES = 320  # "at most about 300"


def _modules() -> list[str]:
    """Every module as its dotted name below dqn, e.g. 'core.train' or 'config'."""
    return sorted(".".join(p.relative_to(PACKAGE).with_suffix("").parts)
                  for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _package(module: str) -> str:
    return module.split(".")[0] if "." in module else "top"


def _resolve(module: str, names: list[str]) -> list[str]:
    """`from dqn.<module> import <names>`: the dqn modules that import loads."""
    hits = [f"{module}.{n}" for n in names if (PACKAGE / module.replace(".", "/") / f"{n}.py")
            .exists()]
    return hits or [module]


def _dqn_imports(module: str) -> list[tuple[str, bool, bool]]:
    """(imported module below dqn, at the top of the file?, type-checking only?) per import."""
    tree = ast.parse((PACKAGE / (module.replace(".", "/") + ".py")).read_text())
    found = []

    def visit(node: ast.AST, top: bool, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                visit(child, top, True)
                continue
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [a.name[4:] for a in child.names if a.name.startswith("dqn.")]
            elif isinstance(child, ast.ImportFrom) and child.module:
                names = [a.name for a in child.names]
                if child.module == "dqn":
                    targets = names
                elif child.module.startswith("dqn."):
                    targets = _resolve(child.module[4:], names)
            found.extend((t, top, typing_only) for t in targets)
            inner = top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef |
                                           ast.ClassDef)
            visit(child, inner, typing_only)

    visit(tree, True, False)
    return found


def test_every_module_sits_in_a_layer_package() -> None:
    for module in _modules():
        package = _package(module)
        assert package in PACKAGES or module in TOP_LEVEL, (
            f"dqn/{module.replace('.', '/')}.py is in no layer package {PACKAGES}")
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == \
        set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_says_its_job_and_imports_nothing(package: str) -> None:
    init = PACKAGE / package / "__init__.py"
    tree = ast.parse(init.read_text())
    doc = ast.get_docstring(tree)
    assert doc and len(doc.split()) >= 8, f"dqn/{package}/__init__.py needs a docstring"
    assert len(tree.body) == 1, f"dqn/{package}/__init__.py holds code: keep it a docstring"
    said = set(re.findall(r"dqn\.(\w+)", doc.split("May import:")[-1])) \
        if "May import:" in doc else set()
    allowed = set(MAY_IMPORT[package]) - {package}
    if package in ("run", "cli"):
        assert "May import:" in doc
    else:
        assert said == allowed, f"dqn/{package}/__init__.py says it may import {said}"


def test_the_package_docstring_lists_the_layers_bottom_to_top() -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text())) or ""
    listed = re.findall(r"^    (\w+) {2,}", doc, flags=re.M)
    assert tuple(listed) == PACKAGES


@pytest.mark.parametrize("module", _modules())
def test_imports_go_to_allowed_layers_and_sit_at_the_top(module: str) -> None:
    package = _package(module)
    allowed = TOP_LEVEL[module] if package == "top" else MAY_IMPORT[package]
    for imported, top, typing_only in _dqn_imports(module):
        assert top, f"dqn.{module} imports dqn.{imported} inside a function or class"
        if not typing_only:
            assert _package(imported) in allowed, (
                f"dqn.{module} ({package}) imports dqn.{imported}; {package} may import "
                f"{allowed}")


def test_no_import_circles() -> None:
    graph = {m: {i for i, _, typing_only in _dqn_imports(m) if not typing_only}
             for m in _modules()}
    state: dict[str, str] = {}

    def walk(m: str, path: list[str]) -> None:
        state[m] = "open"
        for n in sorted(graph.get(m, ())):
            assert state.get(n) != "open", "import circle: " + " -> ".join([*path, m, n])
            if n not in state:
                walk(n, [*path, m])
        state[m] = "done"

    for m in graph:
        if m not in state:
            walk(m, [])


@pytest.mark.parametrize("module", _modules())
def test_modules_stay_small(module: str) -> None:
    lines = len((PACKAGE / (module.replace(".", "/") + ".py")).read_text().splitlines())
    assert lines <= MAX_LINES, f"dqn/{module.replace('.', '/')}.py has {lines} lines: split it"


def _loaded_after_import(packages: tuple[str, ...]) -> set[str]:
    modules = [m for m in _modules() if _package(m) in packages]
    code = ("import sys\n" + "".join(f"import dqn.{m}\n" for m in modules)
            + "print(' '.join(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    return set(done.stdout.split())


def test_analysis_never_imports_torch() -> None:
    loaded = _loaded_after_import(ANALYSIS)
    assert "torch" not in loaded
    assert not {m for m in loaded if m.split(".")[:2] in (["dqn", "core"], ["dqn", "run"],
                                                           ["dqn", "cli"])}


def test_core_imports_nothing_from_the_layers_above() -> None:
    loaded = _loaded_after_import(("base", "core"))
    above = {m for m in loaded if m.startswith("dqn.") and m.split(".")[1] not in
             ("base", "core")}
    assert not above, above


def test_the_public_aliases_stay_importable() -> None:
    code = ("from dqn.config import Config\nfrom dqn.train import train\n"
            "import dqn.base.config, dqn.core.train\n"
            "assert Config is dqn.base.config.Config and train is dqn.core.train.train\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_the_design_page_lists_every_module_in_its_package() -> None:
    """docs/design.md's layer table: one row group per package, naming every module of it."""
    rows = (ROOT / "docs" / "design.md").read_text().split("| package: may import |", 1)[1]
    listed: dict[str, set[str]] = {}
    package = ""
    for line in rows.split("\n\n", 1)[0].splitlines()[2:]:
        first, modules = line.split("|")[1:3]
        if first.strip():
            package = re.match(r"\s*\*\*(\w+)\*\*", first).group(1)
        listed.setdefault(package, set()).update(re.findall(r"`(\w+)`", modules))
    actual: dict[str, set[str]] = {}
    for m in _modules():
        if "." in m and not m.endswith("__init__"):
            actual.setdefault(_package(m), set()).add(m.split(".", 1)[1])
    assert listed == actual
