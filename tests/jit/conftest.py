"""Shared set-up of the JIT tests: one disk cache for every test (and every session).

Every test that compiles with numba uses the same cache directory, and
compiled modules stay loaded in this process, so a closure is compiled at
most once per session however many tests run it.  The directory lives in the
system tmp dir and is kept between sessions (``NBCVM_JIT_TEST_CACHE``
overrides it): a cold run compiles everything (about a minute on two slow
cores), later runs load it (about 20 s).  Reloading from a warm cache is a
code path of its own -- numba's cache once aborted the process on a reload --
so a warm run tests something a cold one does not; test_tiering.py checks a
cold compile followed by a warm load explicitly.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session", autouse=True)
def jit_cache_dir():
    uid = os.getuid() if hasattr(os, "getuid") else 0
    d = Path(os.environ.get("NBCVM_JIT_TEST_CACHE") or Path(tempfile.gettempdir()) / f"nbcvm-jit-tests-{uid}")
    d.mkdir(parents=True, exist_ok=True)
    old = os.environ.get("NBCVM_JIT_CACHE")
    os.environ["NBCVM_JIT_CACHE"] = str(d)
    yield d
    if old is None:
        os.environ.pop("NBCVM_JIT_CACHE", None)
    else:
        os.environ["NBCVM_JIT_CACHE"] = old
