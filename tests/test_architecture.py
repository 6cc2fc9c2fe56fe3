"""The package's layers, declared here once, and every import in ``src/semstyle`` checked against them.

Every ``import`` statement counts — top level, under ``TYPE_CHECKING`` and inside functions alike.
An import may point down the order or sideways within a layer, never up, and the module graph has
no circle. Imports inside functions are allowed only for optional heavy dependencies — the CLI too:
its flags (``cli/parsers/``) import only light modules, and ``cli/main.py`` imports a command's
handler by name when it runs, so ``--help`` never loads torch (checked below).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "semstyle"

# bottom → top; a module belongs to the layer of the longest prefix that names it
LAYERS: tuple[tuple[str, ...], ...] = (
    ("semstyle.errors", "semstyle.types", "semstyle.assets", "semstyle.version", "semstyle.allocator"),
    ("semstyle.config", "semstyle.functional", "semstyle.motion"),
    ("semstyle.io", "semstyle.models"),
    ("semstyle.segmentation",),
    ("semstyle.losses", "semstyle.metrics", "semstyle.viz"),
    ("semstyle.networks",),
    ("semstyle.pipelines",),
    ("semstyle.training", "semstyle.evaluation", "semstyle.export", "semstyle.batch"),
    ("semstyle.web",),
    ("semstyle.cli", "semstyle.__main__", "semstyle"),
)
OPTIONAL = {"transformers", "gradio", "matplotlib", "onnx", "onnxruntime", "ray", "av", "cv2", "tensorboard",
            "yaml", "huggingface_hub", "torch.utils.tensorboard", "playwright"}


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> int:
    best, layer = -1, -1
    for i, names in enumerate(LAYERS):
        for prefix in names:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, layer = len(prefix), i
    if layer < 0:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    return layer


def imports(path: Path) -> Iterator[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import in the file."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]

    def visit(node: ast.AST, in_function: bool) -> Iterator[tuple[str, int, bool]]:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for a in child.names:
                    yield a.name, child.lineno, in_function
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                for a in child.names:  # `from semstyle.x import y` may import the submodule y
                    yield (f"{mod}.{a.name}" if _is_module(f"{mod}.{a.name}") else mod), child.lineno, in_function
            else:
                yield from visit(child, inner)

    yield from visit(tree, False)


def _is_module(name: str) -> bool:
    if not name.startswith("semstyle"):
        return False
    rel = Path(*name.split(".")[1:])
    return (SRC / rel).with_suffix(".py").is_file() or (SRC / rel / "__init__.py").is_file()


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        me = module_name(path)
        edges.setdefault(me, set())
        for mod, _, _ in imports(path):
            if mod.startswith("semstyle") and mod != me:
                edges[me].add(mod)
    return edges


def test_every_module_is_in_a_layer() -> None:
    for path in SRC.rglob("*.py"):
        layer_of(module_name(path))


def test_no_import_points_up_the_layers() -> None:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        me = module_name(path)
        for mod, line, _ in imports(path):
            if mod.startswith("semstyle") and layer_of(mod) > layer_of(me):
                bad.append(f"{path.relative_to(SRC.parent)}:{line}: {me} (layer {layer_of(me)}) imports "
                           f"{mod} (layer {layer_of(mod)})")
    assert not bad, "imports pointing up:\n" + "\n".join(bad)


def test_no_import_circles() -> None:
    edges = graph()
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    cycles: list[list[str]] = []

    def dfs(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            nxt = nxt if nxt in edges else nxt.rpartition(".")[0]  # `from pkg import name` of a non-module
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt in edges and not state.get(nxt):
                dfs(nxt, stack)
        stack.pop()
        state[node] = 2

    for n in sorted(edges):
        if not state.get(n):
            dfs(n, [])
    # a package's __init__ re-exporting its own submodules lazily is not a circle of the code
    assert not cycles, "import circles:\n" + "\n".join(" → ".join(c) for c in cycles)


def test_function_local_imports_only_for_optional_dependencies() -> None:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        for mod, line, local in imports(path):
            top = mod.split(".")[0]
            if local and not any(mod == o or mod.startswith(o + ".") for o in OPTIONAL) and top == "semstyle":
                bad.append(f"{path.relative_to(SRC.parent)}:{line}: {mod}")
    assert not bad, "function-local imports of semstyle modules (import them at the top):\n" + "\n".join(bad)


@pytest.mark.parametrize(("module", "layer"), [("semstyle.types", 0), ("semstyle.pipelines.transfer", 6),
                                               ("semstyle.cli.main", 9), ("semstyle.io.labels", 2)])
def test_layer_lookup(module: str, layer: int) -> None:
    assert layer_of(module) == layer


def test_the_checks_see_a_planted_upward_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the parser must find imports inside functions and under TYPE_CHECKING
    f = tmp_path / "semstyle" / "functional.py"
    f.parent.mkdir()
    f.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from semstyle.cli import main\n"
                 "def g():\n    from .pipelines import stylize\n")
    monkeypatch.setitem(globals(), "SRC", tmp_path / "semstyle")
    got = [(m, local) for m, _, local in imports(f)]
    assert ("semstyle.cli", False) in got or ("semstyle.cli.main", False) in got
    assert any(m.startswith("semstyle.pipelines") and local for m, local in got)


def test_building_the_cli_parser_imports_no_heavy_module() -> None:
    """`semstyle --help` and every subcommand's --help stay quick: the parser (all subcommands) is built
    without importing torch, numpy, gradio, Ray, OpenCV, PyAV or transformers (the handlers import them
    when a command runs)."""
    import subprocess
    import sys

    heavy = ("torch", "numpy", "gradio", "ray", "cv2", "av", "transformers")
    code = ("import sys; from semstyle.cli.main import build_parser; build_parser(); "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout


def test_no_function_is_longer_than_80_lines() -> None:
    long = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:
                long.append(f"{path.relative_to(SRC.parent)}:{node.lineno} {node.name}")
    assert not long, long


def test_scripts_benchmarks_and_docs_build_stylizers_from_the_two_records() -> None:
    """``Stylizer``/``StylizeConfig``/``Networks.from_config`` take the records, not flat fields: the scripts and
    benchmarks that no test runs, and the code blocks of the docs, are checked by their syntax."""
    from semstyle.config import NETWORK_FIELDS, OPTION_FIELDS

    flat = set(NETWORK_FIELDS) | set(OPTION_FIELDS)
    sources = [(p, p.read_text()) for d in ("scripts", "benchmarks") for p in sorted((ROOT / d).glob("*.py"))]
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        blocks = re.findall(r"```python\n(.*?)```", md.read_text(), re.S)
        sources += [(md, b) for b in blocks]
    bad = []
    for path, text in sources:
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                if name in ("Stylizer", "StylizeConfig", "from_config") and {k.arg for k in node.keywords} & flat:
                    bad.append(f"{path.name}:{node.lineno} {name}(…{sorted({k.arg for k in node.keywords} & flat)})")
    assert not bad, bad
