"""Build the flipnet package and its cffi extension (flipnet._core, API mode).

Metadata lives in pyproject.toml; this file only adds the C extension, which cffi builds from
csrc/src/*.c and csrc/include with portable flags (-O3 -std=c99; /O2 on MSVC).

    pip install .                       # regular install
    pip install -e .                    # development install (extension built in place)
    python setup.py build_ext --inplace # or: python python/flipnet/_build.py
"""

import os

from setuptools import setup

# setuptools resolves cffi_modules paths and the C sources relative to the current directory.
os.chdir(os.path.dirname(os.path.abspath(__file__)))

setup(cffi_modules=["python/flipnet/_build.py:ffibuilder"])
