"""The C core's structure, read off its object files (docs: csrc/README.md "Structure").

Each csrc/src/*.c is compiled alone with the host C compiler, with and without
FLIPNET_NO_FLOAT, and its symbols read with `nm`: a file that uses a symbol another file
defines depends on it. The tests fail on a circle of such dependencies, on a global symbol
outside the two namespaces (public `flipnet_` names declared in flipnet.h, internal `fn_`
names), on a call into libc beyond <string.h>, and on a driver that names a layer kind.
"""

import glob
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SRC = os.path.join(ROOT, "csrc", "src")
HEADER = os.path.join(ROOT, "csrc", "include", "flipnet", "flipnet.h")
CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")

#: what the core may call outside itself: <string.h>, and what GCC emits on its own (x86-64
#: target_clones dispatch, stack protector on distributions that enable it)
ALLOWED_EXTERNAL = re.compile(r"(memset|memcpy|memmove|memcmp|__cpu_model|__cpu_indicator_init|"
                              r"__stack_chk_fail|_GLOBAL_OFFSET_TABLE_)$")


def _symbols(obj):
    """(defined global names, undefined names) of one object file."""
    out = subprocess.run(["nm", "-P", obj], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(name)
        elif kind in "TDRBCGSVWi":  # global: text, data, rodata, bss, common, ifunc, weak
            defined.add(name.split(".")[0])  # target_clones: fn.avx2.0, fn.default.1
    return defined, undefined


@pytest.fixture(scope="module", params=["float", "nofloat"])
def objects(request, tmp_path_factory):
    """{file name: (defined, undefined)} for every core source, compiled alone."""
    if not os.path.isdir(SRC):
        pytest.skip("no source checkout beside the tests")  # an installed package's tests
    assert CC, "no C compiler (cc, gcc or clang) on PATH"
    out = tmp_path_factory.mktemp("core-" + request.param)
    flags = ["-DFLIPNET_NO_FLOAT"] if request.param == "nofloat" else []
    table = {}
    for src in sorted(glob.glob(os.path.join(SRC, "*.c"))):
        obj = os.path.join(str(out), os.path.basename(src) + ".o")
        subprocess.run([CC, "-c", "-O2", "-std=c99", "-I", os.path.dirname(HEADER) + "/..",
                        "-I", SRC] + flags + [src, "-o", obj], check=True)
        table[os.path.basename(src)] = _symbols(obj)
    return table


def _graph(objects):
    owner = {}
    for name, (defined, _) in objects.items():
        for sym in defined:
            owner[sym] = name
    return {name: {owner[s] for s in undefined if s in owner and owner[s] != name}
            for name, (_, undefined) in objects.items()}


def _cycle(graph):
    """One cycle of the graph as a list of nodes, or None (depth-first search)."""
    state, path = {}, []

    def visit(v):
        state[v] = 1
        path.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return path[path.index(w):] + [w]
            if w not in state:
                found = visit(w)
                if found:
                    return found
        path.pop()
        state[v] = 2
        return None

    for v in sorted(graph):
        if v not in state:
            found = visit(v)
            if found:
                return found
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert _cycle({"a.c": {"b.c"}, "b.c": {"c.c"}, "c.c": {"a.c"}}) == ["a.c", "b.c", "c.c",
                                                                         "a.c"]
    assert _cycle({"a.c": {"b.c"}, "b.c": set(), "c.c": {"a.c", "b.c"}}) is None


def test_no_two_core_files_call_each_other(objects):
    graph = _graph(objects)
    assert _cycle(graph) is None, "csrc/src files depend on each other in a circle: %s" % (
        " -> ".join(_cycle(graph)))
    # the layering the drivers rely on: kinds never call back into the drivers or the model
    for kind_file in [n for n in graph if n.startswith(("kind_", "vote", "kernels"))]:
        assert not graph[kind_file] & {"forward.c", "train.c", "model.c", "file.c"}, kind_file


def test_global_names_are_public_api_or_internal(objects):
    with open(HEADER) as f:
        public = set(re.findall(r"\b(flipnet_\w+)\s*\(", f.read()))
    for name, (defined, _) in objects.items():
        for sym in defined:
            sym = sym.lstrip("_") if sym.startswith("_fn") else sym  # Mach-O prefixes
            assert sym.startswith("fn_") or sym in public, (
                "%s defines %s: public names are flipnet_* declared in flipnet.h, internal ones "
                "fn_*" % (name, sym))


def test_core_calls_nothing_outside_itself_but_string_h(objects):
    defined_anywhere = set().union(*(d for d, _ in objects.values()))
    for name, (_, undefined) in objects.items():
        for sym in undefined - defined_anywhere:
            assert ALLOWED_EXTERNAL.match(sym), "%s calls %s (outside the core and <string.h>)" % (
                name, sym)


def test_drivers_name_no_layer_kind():
    for name in ("forward.c", "train.c"):
        with open(os.path.join(SRC, name)) as f:
            text = f.read()
        assert not re.search(r"FLIPNET_(TERNARY|BINARY|FP32)\b", text), (
            "%s walks the layers through the kinds' operations and must not name a kind" % name)


def test_includes_are_the_allowed_headers():
    # and the compilers' intrinsics headers (no library behind them): arm_acle.h (Cortex-M DSP),
    # immintrin.h (x86-64 AVX2/AVX-512), arm_neon.h (aarch64 NEON)
    allowed = {"stdint.h", "stddef.h", "string.h", "arm_acle.h", "immintrin.h", "arm_neon.h"}
    for path in glob.glob(os.path.join(SRC, "*.[ch]")) + [HEADER]:
        with open(path) as f:
            for inc in re.findall(r'^\s*#\s*include\s*<([^>]+)>', f.read(), re.M):
                assert inc in allowed, "%s includes <%s>" % (os.path.basename(path), inc)
