"""Layering, checked by reading every module's imports (module level and inside functions) with
ast: no import cycle between the top-level packages, no import upward.

    pipeline (the CLI)
    flows (Prefect)
    batch (Beam jobs that run a model over a dataset: re-transcription)
    transcribe, compose, synthesize (the models; each its own stage)
    maestro (the dataset, Beam preprocessing)
    stages (the stage contract, shared audio and MIDI vocabulary)

The model packages do not import each other, except in DOCUMENTED places; no package below flows
imports Prefect, and the model packages do not import Beam.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Package -> the packages of ours it may import. A new top-level package goes here.
ALLOWED = {
    "stages": set(),
    "maestro": {"stages"},
    "transcribe": {"stages", "maestro"},
    "compose": {"stages", "maestro"},
    "synthesize": {"stages", "maestro"},
    "batch": {"stages", "maestro", "transcribe"},
    "flows": {"stages", "maestro", "transcribe", "compose", "synthesize", "batch"},
    "pipeline": {"stages", "maestro", "transcribe", "compose", "synthesize", "batch", "flows"},
}
# (module, package it may import although ALLOWED does not say so): why.
DOCUMENTED = {
    # The synthesizer's round-trip measure: its renders transcribed by the transcriber, on
    # excerpts cut with the composer's windowing.
    ("synthesize/evaluate.py", "transcribe"),
    ("synthesize/evaluate.py", "compose"),
}
# Imports against the layering not yet moved, as (module, package): each is to leave this set when
# its import moves; test_pending_imports_are_still_there fails on an entry that is no longer needed.
# Empty: batch re-transcription, which made maestro and transcribe import each other, is in batch/.
PENDING: set[tuple[str, str]] = set()
# Third-party packages a layer must not import: orchestration and batch runners stay above models.
FORBIDDEN_THIRD_PARTY = {
    "stages": {"prefect", "apache_beam"},
    "maestro": {"prefect"},
    "transcribe": {"prefect", "apache_beam"},
    "compose": {"prefect", "apache_beam"},
    "synthesize": {"prefect", "apache_beam"},
    "batch": {"prefect"},
}


def top_level_packages() -> list[str]:
    return sorted(p.parent.name for p in REPO.glob("*/__init__.py")
                  if p.parent.name not in ("tests", "benchmarks", "examples", "scripts"))


def modules(package: str) -> list[Path]:
    return [REPO / "pipeline.py"] if package == "pipeline" else sorted((REPO / package).rglob("*.py"))


def imports(path: Path) -> list[tuple[str, int]]:
    """(top-level name, line) of every absolute import in a module, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], node.lineno))
    return found


def package_imports() -> dict[str, dict[str, list[str]]]:
    """package -> {imported package of ours -> ["module:line", ...]}, PENDING imports left out."""
    ours = set(ALLOWED)
    graph: dict[str, dict[str, list[str]]] = {}
    for package in ALLOWED:
        edges = graph.setdefault(package, {})
        for path in modules(package):
            for name, line in imports(path):
                module = path.relative_to(REPO).as_posix()
                if name in ours and name != package and (module, name) not in PENDING:
                    edges.setdefault(name, []).append(f"{path.relative_to(REPO).as_posix()}:{line}")
    return graph


def test_every_package_has_a_layer():
    assert set(top_level_packages()) <= set(ALLOWED), "add the new package to ALLOWED in tests/test_layering.py"


def test_no_upward_or_sideways_import():
    wrong = []
    for package, edges in package_imports().items():
        for target, places in edges.items():
            if target in ALLOWED[package]:
                continue
            wrong += [f"{place} imports {target}" for place in places
                      if (place.rsplit(":", 1)[0], target) not in DOCUMENTED]
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_no_import_cycle_between_packages():
    graph = {package: set(edges) for package, edges in package_imports().items()}
    state: dict[str, str] = {}  # "open" while on the DFS path, "done" after

    def visit(package: str, path: list[str]) -> list[str] | None:
        state[package] = "open"
        for target in sorted(graph.get(package, ())):
            if state.get(target) == "open":
                return path + [package, target]
            if target not in state and (cycle := visit(target, path + [package])):
                return cycle
        state[package] = "done"
        return None

    for package in sorted(graph):
        if package not in state:
            cycle = visit(package, [])
            assert cycle is None, "import cycle: " + " -> ".join(cycle[cycle.index(cycle[-1]):])


def test_pending_imports_are_still_there():
    stale = [f"{module} -> {target}" for module, target in sorted(PENDING)
             if not (REPO / module).is_file() or target not in {name for name, _ in imports(REPO / module)}]
    assert not stale, "remove from PENDING in tests/test_layering.py: " + ", ".join(stale)


def test_model_packages_import_no_orchestration():
    wrong = [f"{path.relative_to(REPO)}:{line} imports {name}"
             for package, forbidden in FORBIDDEN_THIRD_PARTY.items() for path in modules(package)
             for name, line in imports(path) if name in forbidden]
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from transcribe.transcriber import Transcriber\n")
    assert imports(module) == [("os", 1), ("transcribe", 4)]


def python_files() -> list[Path]:
    """Every Python file of the project (not the virtualenv, runs or data)."""
    skipped = {".venv", "runs", "data", ".git"}
    return sorted(p for p in REPO.rglob("*.py") if not skipped & set(p.relative_to(REPO).parts))


def test_no_module_edits_sys_path_and_tests_import_no_scripts():
    wrong = []
    for path in python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name)
                    and node.value.id == "sys"):
                wrong.append(f"{path.relative_to(REPO)}:{node.lineno} uses sys.path")
        if path.parts[-2] == "tests":
            wrong += [f"{path.relative_to(REPO)}:{line} imports scripts" for name, line in imports(path)
                      if name == "scripts"]
    assert not wrong, "\n".join(wrong)
