"""cffi build script (API mode) for the flipnet C core.

Used by setup.py (``cffi_modules=["python/flipnet/_build.py:ffibuilder"]``) and runnable
directly for an in-place development build::

    python python/flipnet/_build.py        # builds python/flipnet/_core*.so

The C declarations given to cffi are derived from the public header
``csrc/include/flipnet/flipnet.h`` (comments, preprocessor lines and the C++ guard are
removed, integer ``#define`` constants are kept), so the binding follows the header without a
second hand-written copy.
"""

import glob
import os
import re
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CSRC = os.path.join(ROOT, "csrc")
INCLUDE = os.path.join(CSRC, "include")
HEADER = os.path.join(INCLUDE, "flipnet", "flipnet.h")

_INT_DEFINE = re.compile(
    r"^\s*#\s*define\s+(\w+)\s+\(?\s*(-?(?:0[xX][0-9a-fA-F]+|\d+))[uUlL]*\s*\)?\s*$")


def header_cdef(path=HEADER):
    """Turn the public header into a cdef string cffi can parse."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    # Comments out (block and line), keeping newlines so line structure survives.
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    text = text.replace("\\\n", " ")  # a macro continued over several lines is one line
    out = []
    skip_depth = 0  # inside `#ifdef __cplusplus` ... `#endif`
    depth = 0
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#"):
            directive = s[1:].strip()
            if directive.startswith(("if", "ifdef", "ifndef")):
                depth += 1
                if skip_depth == 0 and "__cplusplus" in directive:
                    skip_depth = depth
            elif directive.startswith("endif"):
                if skip_depth == depth:
                    skip_depth = 0
                depth -= 1
            elif skip_depth == 0:
                m = _INT_DEFINE.match(s)
                if m and not m.group(1).endswith("_H"):
                    out.append("#define %s %s" % (m.group(1), m.group(2)))
            continue
        if skip_depth:
            continue
        if s:
            out.append(line)
    return "\n".join(out) + "\n"


def _compile_args():
    if sys.platform == "win32" and "GCC" not in sys.version:
        return ["/O2"]
    # -ffp-contract=off: no fused multiply-adds in the FP32 layers' float code (docs/rule.md 8)
    return ["-O3", "-std=c99", "-ffp-contract=off", "-pthread"]


def _link_args():
    return [] if sys.platform == "win32" else ["-pthread"]


# The thread pool of the bindings (python/flipnet/_pool.c): not part of the core, which starts
# no threads; it runs the parts of the core's passes (flipnet_runner).
POOL_CDEF = """
typedef struct fnp_pool fnp_pool;
fnp_pool *fnp_create(uint32_t threads);
void fnp_destroy(fnp_pool *pool);
const flipnet_runner *fnp_runner(fnp_pool *pool);
uint32_t fnp_threads(fnp_pool *pool);
"""


def make_builder(relative_sources=True):
    """The FFI builder; sources relative to the repository root (as setuptools wants them when
    setup.py runs there) or absolute (for ffibuilder.compile, which changes directory)."""
    sources = sorted(glob.glob(os.path.join(CSRC, "src", "*.c"))) + [os.path.join(HERE, "_pool.c")]
    if relative_sources and os.path.abspath(os.getcwd()) == ROOT:
        sources = [os.path.relpath(p, ROOT).replace(os.sep, "/") for p in sources]
    builder = FFI()
    builder.cdef(header_cdef() + POOL_CDEF)
    builder.set_source(
        "flipnet._core",
        '#include "flipnet/flipnet.h"\n#include "_pool.h"\n',
        sources=sources,
        include_dirs=[INCLUDE, HERE],
        extra_compile_args=_compile_args(),
        extra_link_args=_link_args(),
    )
    return builder


ffibuilder = make_builder()

if __name__ == "__main__":
    # In-place development build: python/flipnet/_core*.so (objects under build/cffi).
    tmp = os.path.join(ROOT, "build", "cffi")
    so = make_builder(relative_sources=False).compile(tmpdir=tmp, verbose=False)
    import shutil

    for old in glob.glob(os.path.join(HERE, "_core*.so")) + \
            glob.glob(os.path.join(HERE, "_core*.pyd")):
        os.unlink(old)  # a stale build with another ABI tag would shadow the new one
    dest = os.path.join(HERE, os.path.basename(so))
    shutil.copy2(so, dest)
    print("built", dest)
