"""The shape of python/flipnet, read from the source (ast), not from a run:

* no import cycle among flipnet modules, lazy imports inside functions included;
* no module uses another module's private names: no ``from .x import _name`` and no
  ``obj._name`` (or ``getattr(obj, "_name")``) where ``_name`` is a private name that another
  flipnet module defines and this one does not (``self`` / ``cls`` excepted);
* ``flipnet.device`` is a library: it imports nothing from ``flipnet.cli``;
* one atomic write (``os.replace`` / ``os.rename`` only in flipnet/files.py), one table of the
  core's layer kinds (a dict literal ``{"ternary": 1, ...}`` only in flipnet/arch.py);
* model.py has at most 500 lines.

The checkers run first on a small package written for the purpose, with one violation of each
kind, so that a checker that finds nothing cannot pass unnoticed.
"""

import ast
import os

import pytest

PKG_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "python", "flipnet")
#: modules that are not .py files: the cffi extension built by flipnet/_build.py
EXTENSIONS = ("flipnet._core",)


# ---- reading the package -------------------------------------------------------------------
def read_package(pkg_dir, name="flipnet", extensions=EXTENSIONS):
    """{module name: (path, ast)} for every .py file below ``pkg_dir``, plus the names of
    compiled ``extensions`` (path and tree None)."""
    mods = {}
    root = os.path.dirname(os.path.abspath(pkg_dir))
    for d, _, files in os.walk(pkg_dir):
        for f in files:
            if not f.endswith(".py"):
                continue
            path = os.path.join(d, f)
            rel = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
            if rel.endswith(".__init__"):
                rel = rel[:-len(".__init__")]
            with open(path, encoding="utf-8") as fh:
                mods[rel] = (path, ast.parse(fh.read(), path))
    for ext in extensions:
        mods.setdefault(ext, (None, None))
    assert name in mods, "no package %s in %s" % (name, pkg_dir)
    return mods


def _package_of(mod, path):
    return mod if path.endswith("__init__.py") else mod.rpartition(".")[0]


def imports(mods):
    """Every import of every module: (module, line, target module, imported name or None)."""
    out = []
    for mod, (path, tree) in mods.items():
        if tree is None:
            continue
        pkg = _package_of(mod, path)
        for node in ast.walk(tree):  # all of them: module level and inside functions
            if isinstance(node, ast.Import):
                out += [(mod, node.lineno, a.name, None) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = pkg.split(".")
                    parts = parts[:len(parts) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                out += [(mod, node.lineno, base, a.name) for a in node.names]
    return out


def import_graph(mods):
    """{module: {modules it imports}} among the package's modules. ``from P import x`` imports
    P and, when P.x is a module, P.x; a module's own enclosing packages are not edges (Python
    runs a package's __init__ before its modules, whatever they import)."""
    graph = {m: set() for m in mods}
    for mod, _, target, name in imports(mods):
        for t in (target, "%s.%s" % (target, name) if name else None):
            if t in mods and t != mod and not mod.startswith(t + "."):
                graph[mod].add(t)
    return graph


def cycles(graph):
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(mods):
    """``from X import _name`` where ``_name`` is not a module: (module, line, text)."""
    return [(mod, line, "from %s import %s" % (target, name))
            for mod, line, target, name in imports(mods)
            if name and _private(name) and "%s.%s" % (target, name) not in mods]


def defined_privates(tree):
    """The private names a module defines: functions, classes, arguments, variables,
    imports' aliases, and attributes it assigns on self / cls or in a class body."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.split(".")[0])
        elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
              and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            names.add(node.attr)
    return {n for n in names if _private(n)}


def _uses(tree):
    """(line, receiver text, private name) of every ``x._name`` and ``getattr(x, "_name")``
    (also setattr / hasattr / delattr) whose receiver is not ``self`` or ``cls``."""
    for node in ast.walk(tree):
        recv = name = None
        if isinstance(node, ast.Attribute):
            recv, name = node.value, node.attr
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
              and isinstance(node.args[1].value, str)):
            recv, name = node.args[0], node.args[1].value
        if name is None or not _private(name):
            continue
        if isinstance(recv, ast.Name) and recv.id in ("self", "cls"):
            continue
        yield node.lineno, ast.unparse(recv), name


def private_uses(mods):
    """Uses of private names that another module of the package defines and this one does not:
    (module, line, text)."""
    defined = {m: defined_privates(t) for m, (_, t) in mods.items() if t is not None}
    out = []
    for mod, names in defined.items():
        owners_of = {}
        for other, theirs in defined.items():
            if other != mod:
                for n in theirs - names:
                    owners_of.setdefault(n, []).append(other)
        for line, recv, name in _uses(mods[mod][1]):
            if name in owners_of:
                out.append((mod, line, "%s.%s (a private name of %s)"
                            % (recv, name, ", ".join(sorted(owners_of[name])))))
    return sorted(out)


def calls_of(tree, module, func):
    """Lines calling ``module.func(...)``."""
    return [n.lineno for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and n.func.attr == func and isinstance(n.func.value, ast.Name)
            and n.func.value.id == module]


def kind_tables(tree):
    """Lines of dict literals that map a layer kind's name to an integer code."""
    return [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Dict)
            and any(isinstance(k, ast.Constant) and k.value in ("ternary", "binary", "fp32")
                    and isinstance(v, ast.Constant) and isinstance(v.value, int)
                    for k, v in zip(n.keys, n.values))]


# ---- the checkers on a package made to break them ------------------------------------------
BROKEN = {
    "__init__.py": "from .a import A\n",
    "a.py": "import os\n\nclass A:\n    def __init__(self):\n        self._hidden = 1\n"
            "        self.shown = 2\n\n    def own(self, other):\n"
            "        return other._hidden + self._hidden\n\n"
            "def _helper():\n    return 1\n\n"
            "def later():\n    from . import b  # lazy: still an edge\n    return b\n",
    "b.py": "from .a import A, _helper\nfrom . import _ext\n\n"
            "def peek(x):\n    return x._hidden, getattr(x, '_hidden'), x._unknown, x.shown\n"
            "\ndef write(p):\n    os.replace(p + '.tmp', p)\n    return {'ternary': 1}\n",
    "c.py": "from . import b\n",
    "sub/__init__.py": "",
    "sub/d.py": "from .. import c\n",
    "_ext.py": "",
}


@pytest.fixture
def broken(tmp_path):
    pkg = tmp_path / "pkg"
    for rel, text in BROKEN.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    return read_package(str(pkg), "pkg", extensions=())


def test_checkers_find_what_they_look_for(broken):
    assert cycles(import_graph(broken)) == [["pkg.a", "pkg.b"]]  # through the lazy import
    assert "pkg.c" in import_graph(broken)["pkg.sub.d"]
    assert private_imports(broken) == [("pkg.b", 1, "from pkg.a import _helper")]  # _ext: module
    uses = private_uses(broken)
    assert [(m, line) for m, line, _ in uses] == [("pkg.b", 5), ("pkg.b", 5)]
    assert all("x._hidden (a private name of pkg.a)" in text for _, _, text in uses)
    # other._hidden inside pkg.a is the module's own name; x._unknown is nobody's
    path, tree = broken["pkg.b"]
    assert calls_of(tree, "os", "replace") == [8]
    assert kind_tables(tree) == [9]


# ---- the package ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def flipnet_mods():
    return read_package(PKG_DIR)


def test_no_import_cycles(flipnet_mods):
    found = cycles(import_graph(flipnet_mods))
    assert found == [], "import cycles among flipnet modules: %s" % "; ".join(
        " <-> ".join(c) for c in found)


def test_no_private_imports_across_modules(flipnet_mods):
    found = private_imports(flipnet_mods)
    assert found == [], "\n".join("%s:%d: %s" % f for f in found)


def test_no_use_of_other_modules_private_members(flipnet_mods):
    found = private_uses(flipnet_mods)
    assert found == [], "\n".join("%s:%d: %s" % f for f in found)


def test_the_device_package_is_a_library(flipnet_mods):
    graph = import_graph(flipnet_mods)
    bad = sorted((m, t) for m, ts in graph.items() if m.startswith("flipnet.device")
                 for t in ts if t == "flipnet.cli" or t.startswith("flipnet.cli."))
    assert bad == [], "flipnet.device imports the command line: %s" % bad


def test_one_atomic_write(flipnet_mods):
    bad = ["%s:%d" % (m, line) for m, (path, tree) in sorted(flipnet_mods.items())
           if tree is not None and m != "flipnet.files"
           for line in calls_of(tree, "os", "replace") + calls_of(tree, "os", "rename")]
    assert bad == [], "files replaced outside flipnet.files (use write_atomic / atomic_path): %s" \
        % bad


def test_one_layer_kind_table(flipnet_mods):
    bad = ["%s:%d" % (m, line) for m, (path, tree) in sorted(flipnet_mods.items())
           if tree is not None and m != "flipnet.arch" for line in kind_tables(tree)]
    assert bad == [], "layer kind codes outside flipnet.arch.KINDS: %s" % bad


def test_model_py_is_at_most_500_lines():
    with open(os.path.join(PKG_DIR, "model.py"), encoding="utf-8") as f:
        n = sum(1 for _ in f)
    assert n <= 500, "python/flipnet/model.py has %d lines (at most 500)" % n
