"""Shared set-up of the JIT tests: one disk cache for the whole session.

Every test that compiles with numba uses the same cache directory (a tmp dir
made once per session), and compiled modules stay loaded in this process, so
a closure is compiled at most once per session however many tests run it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session", autouse=True)
def jit_cache_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("jit-cache")
    old = os.environ.get("NBCVM_JIT_CACHE")
    os.environ["NBCVM_JIT_CACHE"] = str(d)
    yield d
    if old is None:
        os.environ.pop("NBCVM_JIT_CACHE", None)
    else:
        os.environ["NBCVM_JIT_CACHE"] = old
