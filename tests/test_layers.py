"""The package reads bottom-up (docs/architecture.md): every import of a plugin module, at the top
of a file or inside a function, goes to the same layer or a lower one, there is no import circle,
nothing imports a ``__main__``, no module locates the source tree, and modules stay short."""

import ast
import os

import pytest

PACKAGE = "recbole_llm4sbr"
ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), PACKAGE)

# bottom to top; a module belongs to the layer of its longest matching prefix, every __main__ to
# the top
LAYERS = [
    ("foundation", ["", "paths", "settings", "results"]),
    ("atomic files", ["convert", "datasets", "item_text"]),
    ("prefix index", ["prefix_index"]),
    ("side file", ["side_file"]),
    ("intent (stage one)", ["intent"]),
    ("data (stage two)", ["data"]),
    ("model", ["model"]),
    ("config, trainer, checkpoint", ["config", "marker", "checkpoint", "trainer", "uncertainty"]),
    ("experiment", ["experiment", "quick_start"]),
    ("applications", ["serve", "hyper", "explain", "run", "cli"]),
]
MAX_LINES = 300


def modules():
    """``{module name: path}`` of every module and package of the plugin."""
    found = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                found[rel[: -len(".__init__")] if rel.endswith(".__init__") else rel] = path
    return found


def layer_of(module):
    if module.endswith(".__main__"):
        return len(LAYERS) - 1
    short = module[len(PACKAGE) + 1:]
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (short == prefix or short.startswith(prefix + ".") or prefix == "") and (
                    best is None or len(prefix) > len(best[1])):
                best = (i, prefix)
    assert best is not None and (best[1] or short == ""), f"{module} is in no layer"
    return best[0]


def imports(module, path, known):
    """Plugin modules that ``path`` imports anywhere in it (``from a import b`` names ``a.b``
    when that is a module)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        out.update(n for n in names if n == PACKAGE or n.startswith(PACKAGE + "."))
    return out


@pytest.fixture(scope="module")
def graph():
    known = modules()
    return {m: imports(m, p, known) for m, p in known.items()}


def test_every_module_has_a_layer(graph):
    for module in graph:
        layer_of(module)


def test_no_import_goes_up_a_layer_or_into_a_main(graph):
    upward = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})"
              for m, deps in sorted(graph.items()) for d in sorted(deps)
              if layer_of(d) > layer_of(m)]
    assert upward == []
    into_main = [f"{m} imports {d}" for m, deps in graph.items() for d in deps if d.endswith("__main__")]
    assert into_main == []


def test_no_import_circle(graph):
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_checker_sees_a_violation():
    """The rule itself can fail: an upward import and a circle are found in a made-up graph."""
    fake = {f"{PACKAGE}.settings": {f"{PACKAGE}.model.registry"}, f"{PACKAGE}.model.registry": set()}
    assert layer_of(f"{PACKAGE}.settings") < layer_of(f"{PACKAGE}.model.registry")
    assert [d for m, deps in fake.items() for d in deps if layer_of(d) > layer_of(m)]
    assert imports(f"{PACKAGE}.explain", os.path.join(ROOT, "explain.py"), modules()) >= {
        f"{PACKAGE}.experiment"}


def test_no_module_locates_the_source_tree_and_modules_stay_short():
    for module, path in modules().items():
        text = open(path, encoding="utf-8").read()
        assert "REPO_ROOT" not in text, module
        assert text.count("\n") <= MAX_LINES, f"{module}: {text.count(chr(10))} lines"
