"""Layering, checked by reading every module's imports (module level and inside functions) with
ast: no import cycle between the top-level packages or between modules, no import upward.

    pipeline (the CLI)
    flows (Prefect)
    batch (Beam jobs that run a model over a dataset: re-transcription)
    transcribe, compose, synthesize (the models; each its own stage)
    maestro (the dataset, Beam preprocessing)
    stages (the stage contract, shared audio and MIDI vocabulary)

The model packages do not import each other, except in DOCUMENTED places; no package below flows
imports Prefect, and the model packages do not import Beam.

Inside stages/, by role (STAGES_PARTS): the stage contract and configuration at the top level, the
audio and MIDI vocabulary in io/, training runs and shipping in training/; each part imports only
those before it.

Inside transcribe/, one sub-package per network (TRANSCRIBE_NETWORKS) around the modules they share
(TRANSCRIBE_SHARED, which import no network) and those that put them together (TRANSCRIBE_ASSEMBLY);
a network imports another only where TRANSCRIBE_NETWORKS says so.

No library module finds the checkout from its own path: benchmarks/, examples/ and the data beside
the repository are named by the caller.
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


# stages/: part -> the parts it may import besides itself. "top" is the modules at stages/'s top level
# (contract, settings, options, config, checkpoints, cli, quiet, compiled); every other part is a
# sub-package. A new sub-package goes here.
STAGES_PARTS = {
    "top": set(),
    "io": {"top"},  # audio and MIDI in and out, piano rolls, the normalize stage, plots
    "training": {"top", "io"},  # training runs, shipping, model cards (a run draws its curves with io.plots)
}


# transcribe/: every top-level module is shared by the networks or assembles them; every
# sub-package is a network, with the networks it may import (and why).
TRANSCRIBE_SHARED = {"config", "features", "dataset", "decode", "metrics", "errors"}
TRANSCRIBE_ASSEMBLY = {"__init__", "transcriber", "stage", "cli", "settings", "evaluate", "report", "tuning"}
TRANSCRIBE_NETWORKS = {
    "onsets_frames": set(),
    "rescorer": set(),  # reads the Onsets and Frames heads, never the network
    "pedal": {"onsets_frames"},  # the pedal network hears with the Onsets and Frames acoustic stack
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


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of a directed graph, as the nodes along it with the first repeated at the end."""
    state: dict[str, str] = {}  # "open" while on the DFS path, "done" after

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return path + [node, target]
            if target not in state and (cycle := visit(target, path + [node])):
                return cycle
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node, [])):
            return cycle[cycle.index(cycle[-1]):]
    return None


def test_no_import_cycle_between_packages():
    cycle = find_cycle({package: set(edges) for package, edges in package_imports().items()})
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def load_time_imports(path: Path) -> list[str]:
    """Dotted names a module imports while it loads: its body's imports, in if, try and class
    blocks too, but not those inside functions (run later) or under `if TYPE_CHECKING:`."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for statement in child.orelse:
                    visit(ast.Module(body=[statement], type_ignores=[]))
                continue
            if isinstance(child, ast.Import):
                found.extend(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.extend(f"{child.module}.{alias.name}" for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return found


def module_graph(root: Path, paths: list[Path]) -> dict[str, set[str]]:
    """module -> the modules of ours it imports while it loads (`from a import b` is module a.b
    when a/b.py exists, else a itself)."""
    names = {module_name(path, root): path for path in paths}
    graph = {}
    for name, path in names.items():
        edges = set()
        for imported in load_time_imports(path):
            while imported and imported not in names:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                edges.add(imported)
        graph[name] = edges
    return graph


def test_no_import_cycle_between_modules():
    cycle = find_cycle(module_graph(REPO, [path for package in ALLOWED for path in modules(package)]))
    assert cycle is None, "modules that import each other while they load: " + " -> ".join(cycle)


def test_the_checker_sees_a_cycle_between_modules(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("from pkg.b import f\n")
    (tmp_path / "pkg" / "b.py").write_text("import os\n\ndef f():\n    pass\n\nfrom pkg import a  # noqa\n")
    (tmp_path / "pkg" / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                           "    from pkg.a import x\n\ndef g():\n    from pkg import a\n")
    graph = module_graph(tmp_path, sorted(tmp_path.rglob("*.py")))
    assert graph["pkg.c"] == set()  # under TYPE_CHECKING or inside a function: no cycle
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.a"]


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


def test_no_library_module_finds_the_checkout_from_its_own_path():
    """A package finds its own files through itself (the shipped checkpoints through
    stages.checkpoints), never by walking up from `__file__`: installed, it has no checkout around it."""
    wrong = [f"{path.relative_to(REPO)}:{node.lineno} uses __file__"
             for package in ALLOWED for path in modules(package)
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path)))
             if isinstance(node, ast.Name) and node.id == "__file__"]
    assert not wrong, "name the path as an argument or option instead:\n" + "\n".join(wrong)


def stages_imports(path: Path) -> list[tuple[str, int]]:
    """(dotted name, line) of every stages module a module imports, wherever it stands
    (`from stages import x` counts as stages.x)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.split(".")[0] == "stages"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "stages":
                found += [(f"stages.{alias.name}", node.lineno) for alias in node.names]
            elif node.module.split(".")[0] == "stages":
                found.append((node.module, node.lineno))
    return found


def stages_part(name: str) -> str:
    """The part of stages/ a dotted name under it is in: its sub-package, else "top"."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES_PARTS else "top"


def test_every_stages_sub_package_has_a_part():
    packages = {p.parent.name for p in (REPO / "stages").glob("*/__init__.py")}
    assert packages == set(STAGES_PARTS) - {"top"}, "add the sub-package to STAGES_PARTS in tests/test_layering.py"


def test_stages_parts_import_only_those_before_them():
    wrong = []
    for path in sorted((REPO / "stages").rglob("*.py")):
        part = stages_part(module_name(path, REPO))
        wrong += [f"{path.relative_to(REPO)}:{line} imports {name}" for name, line in stages_imports(path)
                  if stages_part(name) not in STAGES_PARTS[part] | {part}]
    assert not wrong, "imports against stages/'s order (top, io, training):\n" + "\n".join(wrong)


def test_the_stages_checker_reads_parts(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from stages import io, options\nimport stages.training.ship\n\n"
                      "def f():\n    from stages.io.midi import NOTE_DTYPE\n")
    names = stages_imports(module)
    assert names == [("stages.io", 1), ("stages.options", 1), ("stages.training.ship", 2), ("stages.io.midi", 5)]
    assert [stages_part(name) for name, _ in names] == ["io", "top", "training", "io"]
    assert stages_part("stages") == stages_part("stages.contract") == "top"


def transcribe_imports(path: Path) -> set[str]:
    """The transcribe modules and sub-packages a module imports, wherever it stands, as their
    place under transcribe/: "decode", "rescorer", ... (`from transcribe import x` counts as x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = ([f"{node.module}.{alias.name}" for alias in node.names] if node.module == "transcribe"
                     else [node.module])
        found |= {name.split(".")[1] for name in names if name.startswith("transcribe.")}
    return found


def test_every_transcribe_module_has_a_place():
    root = REPO / "transcribe"
    modules_found = {p.stem for p in root.glob("*.py")}
    packages = {p.parent.name for p in root.glob("*/__init__.py")}
    assert not modules_found & (TRANSCRIBE_SHARED & TRANSCRIBE_ASSEMBLY)
    assert modules_found == TRANSCRIBE_SHARED | TRANSCRIBE_ASSEMBLY, "place the module in tests/test_layering.py"
    assert packages == set(TRANSCRIBE_NETWORKS), "add the network to TRANSCRIBE_NETWORKS in tests/test_layering.py"


def test_transcribe_networks_and_shared_modules_import_what_they_may():
    root = REPO / "transcribe"
    wrong = []
    for name in TRANSCRIBE_SHARED:
        path = root / f"{name}.py"
        wrong += [f"{path.relative_to(REPO)} imports transcribe.{target}"
                  for target in sorted(transcribe_imports(path) - TRANSCRIBE_SHARED)]
    for network, allowed in TRANSCRIBE_NETWORKS.items():
        for path in sorted((root / network).rglob("*.py")):
            others = transcribe_imports(path) & set(TRANSCRIBE_NETWORKS) - {network} - allowed
            wrong += [f"{path.relative_to(REPO)} imports transcribe.{target}" for target in sorted(others)]
    assert not wrong, "imports against transcribe/'s layout:\n" + "\n".join(wrong)


def test_the_transcribe_checker_reads_sub_packages(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import transcribe.pedal.pedal\nfrom transcribe import decode, rescorer\n\n"
                      "def f():\n    from transcribe.onsets_frames.model import build_model\n")
    assert transcribe_imports(module) == {"pedal", "decode", "rescorer", "onsets_frames"}
