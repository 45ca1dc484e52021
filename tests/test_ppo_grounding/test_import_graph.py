"""ppo_grounding's modules import each other without a cycle, wherever the import is written.

A cycle held together by an import inside a function works until someone moves that import to the
top of its file; so the graph here counts every import of a ppo_grounding module, at top level,
inside functions and under `if TYPE_CHECKING:` alike, read from the source with `ast` (nothing
is imported). A module's parent packages are not counted: Python runs them first, whoever asks.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import babyai_text
import ppo_grounding

ROOT = Path(ppo_grounding.__file__).parent


def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its __init__.py)."""
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `name` (at `path`) imports, anywhere in its source."""
    is_package = path.name == "__init__.py"
    here = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                # `from . import trainer` imports the submodule; `from .config import X`, the module
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in known else base)
    return {m for m in found if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {name: imported_modules(name, path, known) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_reader_sees_relative_and_in_function_imports():
    graph = import_graph()
    assert len(graph) > 20 and "ppo_grounding.baselines.symbolic" in graph
    # top level, two dots, and a package's `from . import module`
    assert "ppo_grounding.envs" in graph["ppo_grounding.trainer"]
    assert "ppo_grounding.envs" in graph["ppo_grounding.baselines.symbolic"]
    assert "ppo_grounding.distributed" in graph["ppo_grounding.trainer"]
    # imports inside functions count too: cli defers the trainer to keep `--help` fast
    assert "ppo_grounding.trainer" in graph["ppo_grounding.cli"]


def test_find_cycle_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_ppo_grounding_imports_no_module_that_imports_it_back():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_extra_action_phrases_live_in_babyai_text_and_are_still_importable_from_here():
    # the module, not the `evaluate` function that ppo_grounding's namespace also calls evaluate
    evaluate = importlib.import_module("ppo_grounding.evaluate")
    assert evaluate.EXTRA_ACTION_PHRASES is babyai_text.EXTRA_ACTION_PHRASES
    assert ppo_grounding.EXTRA_ACTION_PHRASES is babyai_text.EXTRA_ACTION_PHRASES
    assert evaluate.extra_action_phrases(2) == ("sleep", "dance")
    assert evaluate.make_env is ppo_grounding.make_env
