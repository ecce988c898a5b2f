"""The layout's rules, read from the source: what may import what, and the architecture doc
naming every package and module that exists (and nothing that does not)."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# what the scorer may import of the library (and, through them, their own imports)
SCORER_MAY_IMPORT = ("tt_tf.bundle.format", "tt_tf.stores", "tt_tf.evaluation.topk")
NEVER_IN_THE_SCORER = ("tf_keras", "tensorflow_recommenders", "keras", "tt_tf._keras", "tt_tf.training",
                       "tt_tf.models", "tt_tf.negatives", "tt_tf.layers", "tt_tf.cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, top_level_only: bool = False) -> list:
    """``(module imported, enclosing function or None)`` for every import in ``path``."""
    tree = ast.parse(path.read_text())
    found = []

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, ast.Import):
                found.extend((alias.name, function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append((child.module, function))
                found.extend((f"{child.module}.{alias.name}", function) for alias in child.names)
            if not (top_level_only and inner is not None):
                visit(child, inner)

    visit(tree, None)
    return found


def python_files(*folders):
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_only_the_cli_serve_command_imports_the_scorer_and_nothing_imports_the_cli():
    offenders = [(module_name(p), name, function) for p in python_files("tt_tf") for name, function in imports_of(p)
                 if within(name, ("serving",))
                 and not (module_name(p) == "tt_tf.cli" and function in ("cmd_serve", "serve_settings"))]
    assert not offenders, offenders
    users_of_cli = [module_name(p) for p in python_files("tt_tf", "serving", "benchmarks")
                    if module_name(p) != "tt_tf.cli" and any(within(n, ("tt_tf.cli",)) for n, _ in imports_of(p))]
    assert not users_of_cli, users_of_cli


def test_the_scorer_reaches_only_the_bundle_format_stores_and_top_k():
    direct = {name for p in python_files("serving") for name, _ in imports_of(p) if within(name, ("tt_tf",))}
    assert direct and all(within(name, SCORER_MAY_IMPORT) for name in direct), sorted(direct)
    # everything those modules import in turn, followed through the library's files
    reached, todo = set(), [name for name in direct]
    while todo:
        name = todo.pop()
        for candidate in (ROOT / (name.replace(".", "/") + ".py"), ROOT / name.replace(".", "/") / "__init__.py"):
            if candidate.exists() and name not in reached:
                reached.add(name)
                todo.extend(n for n, _ in imports_of(candidate))
        reached.add(name)
    third_party = {name for p in python_files("serving") for name, _ in imports_of(p)}
    bad = sorted(n for n in reached | third_party if within(n, NEVER_IN_THE_SCORER))
    assert not bad, bad


def test_library_packages_import_no_loop():
    """The packages of tt_tf form no cycle through their module-level imports."""
    graph = {}
    for path in python_files("tt_tf"):
        source = module_name(path).split(".")[:2]
        for name, _ in imports_of(path, top_level_only=True):
            target = name.split(".")[:2]
            if target[0] == "tt_tf" and len(target) == 2 and (ROOT / "tt_tf" / target[1]).is_dir() \
                    and len(source) == 2 and target != source:
                graph.setdefault(source[1], set()).add(target[1])
    state = {}

    def cycle_from(node, trail):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return trail + [node, nxt]
            if nxt not in state and (found := cycle_from(nxt, trail + [node])):
                return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            assert cycle_from(node, []) is None, f"import loop between packages: {cycle_from(node, [])}"


def module_import_graph() -> dict:
    """``{module: {module it imports: enclosing function or None}}`` over tt_tf's modules, imports
    inside functions included (a name imported from a module counts as that module)."""
    modules = {module_name(p): p for p in python_files("tt_tf")}

    def owner(name):
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for source, path in modules.items():
        for name, function in imports_of(path):
            target = owner(name)
            if target and target != source:
                graph.setdefault(source, {}).setdefault(target, function)
    return graph


def import_loop(graph) -> list | None:
    """One loop of ``graph`` as the modules along it, or None."""
    state = {}

    def walk(node, trail):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":  # on the current path: the loop is the path from it
                path = trail + [node]
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := walk(nxt, trail + [node])):
                return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := walk(node, [])):
            return found
    return None


def test_no_module_import_loop_even_through_imports_inside_functions():
    """An import inside a function hides a loop from Python, not from the design: none may close one."""
    graph = module_import_graph()
    loop = import_loop(graph)
    assert loop is None, "import loop: " + " -> ".join(
        f"{a} (in {graph[a][b] or 'module level'})" for a, b in zip(loop, loop[1:])) + f" -> {loop[-1]}"
    # the check itself: a loop closed only inside a function is found
    graph = {"a": {"b": None}, "b": {"a": "late_import"}}
    assert import_loop(graph) is not None


def test_the_architecture_doc_names_every_package_and_module():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    named = {}
    for row in re.findall(r"^\| `([\w/]+/)` \| ([^|]+) \|", doc, flags=re.M):
        named[row[0]] = set(re.findall(r"`([\w]+\.py)`", row[1]))
    packages = {str(p.parent.relative_to(ROOT)) + "/" for p in python_files("tt_tf", "serving")
                if p.name == "__init__.py"}
    assert packages == set(named), f"packages not in the doc: {sorted(packages - set(named))}; " \
                                   f"named but absent: {sorted(set(named) - packages)}"
    for package, modules in named.items():
        present = {p.name for p in (ROOT / package).glob("*.py")}
        assert modules == present - {"__init__.py"} or modules == present, (package, sorted(present ^ modules))
    for path in set(re.findall(r"`((?:tt_tf|serving|benchmarks|tests)/[\w/]+\.py)`", doc)):
        assert (ROOT / path).exists(), f"docs/architecture.md names {path}, which does not exist"


def test_every_module_registering_keras_classes_is_imported_before_a_load():
    from tt_tf.keras_mode import KERAS_OBJECT_MODULES
    registering = {module_name(p) for p in python_files("tt_tf") if "register_keras_serializable(" in p.read_text()}
    assert registering == set(KERAS_OBJECT_MODULES)

