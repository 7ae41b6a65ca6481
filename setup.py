"""Build the flipnet package and its cffi extension (flipnet._core, API mode).

Metadata lives in pyproject.toml; this file adds the C extension, which cffi builds from
csrc/src/*.c and csrc/include with portable flags (-O3 -std=c99; /O2 on MSVC), and puts the
device sources into the package: csrc/ (the core), firmware/ and cmake/ (the toolchain files)
go to flipnet/_src/, so that an installed flipnet (a wheel, outside any checkout) can build
the host twin and the firmware images (flipnet.device.sim; `flipnet demo --build`).

    pip install .                       # regular install
    pip install -e .                    # development install (extension built in place)
    python setup.py build_ext --inplace # or: python python/flipnet/_build.py
    python -m build                     # sdist and wheel (both carry csrc/, firmware/, cmake/)
"""

import fnmatch
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
# setuptools resolves cffi_modules paths and the C sources relative to the current directory.
os.chdir(HERE)

#: source trees shipped in the package, as flipnet/_src/<tree> (MANIFEST.in puts them in the
#: sdist); what the device builds need: the core, the firmware, the CMake toolchain files
SOURCE_TREES = ("csrc", "firmware", "cmake")
#: never shipped: build products, caches
EXCLUDE = ("__pycache__", "*.pyc", "*.o", "*.obj", "*.so", "*.elf", "*.bin", "*.map",
           "build", "build-*")


def _ignore(directory, names):
    return {n for n in names if any(fnmatch.fnmatch(n, p) for p in EXCLUDE)}


class BuildPyWithSources(build_py):
    """build_py, plus the source trees copied to <build_lib>/flipnet/_src/."""

    def run(self):
        super().run()
        dest = os.path.join(self.build_lib, "flipnet", "_src")
        if os.path.isdir(dest):
            shutil.rmtree(dest)
        for tree in SOURCE_TREES:
            src = os.path.join(HERE, tree)
            if not os.path.isdir(src):
                raise RuntimeError("flipnet: %s/ is missing beside setup.py: the package would "
                                   "ship without the device sources (an incomplete sdist?)"
                                   % tree)
            shutil.copytree(src, os.path.join(dest, tree), ignore=_ignore)


setup(cffi_modules=["python/flipnet/_build.py:ffibuilder"],
      cmdclass={"build_py": BuildPyWithSources})
