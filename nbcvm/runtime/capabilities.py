"""No ambient authority: host access only through granted capability modules.

A program can reach nothing of the host -- files, environment, network,
processes, Python objects -- except through the native modules below, and
only when the runner grants them (``nbcvm run --allow fs:DIR --allow env``).
Nothing is granted by default beyond stdout and the pure native modules.

=============  ================================================================
grant          module and what it allows
=============  ================================================================
``fs:DIR``     ``fs``: read, write, append, exists, list, remove -- paths are
               relative to DIR and may not leave it (``..``, absolute paths
               and symlinks pointing outside are refused)
``fs-ro:DIR``  ``fs``: the reading half only
``env``        ``env``: get NAME (any variable)
``env:A,B``    ``env``: get, for the variables A and B only
=============  ================================================================

There is no network or process module at all; no instruction or native
function hands a program a Python object or a way to get one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from nbcvm.errors import UsageError, VMError
from nbcvm.vm.values import type_name

CAPABILITY_MODULES = {"fs": "--allow fs:DIR (or fs-ro:DIR)", "env": "--allow env (or env:NAME,...)"}
MAX_FILE_BYTES = 64 << 20


@dataclass(frozen=True)
class Grants:
    fs_root: Path | None = None
    fs_write: bool = False
    env: bool = False
    env_names: frozenset[str] | None = None  # None = every variable (when env is granted)
    specs: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        return {"fs": str(self.fs_root) if self.fs_root else None, "fs_write": self.fs_write,
                "env": self.env, "env_names": sorted(self.env_names) if self.env_names else None}


def parse_grants(specs: tuple[str, ...] | list[str]) -> Grants:
    fs_root, fs_write, env, names = None, False, False, None
    for spec in specs:
        kind, _, arg = spec.partition(":")
        if kind in ("fs", "fs-ro"):
            if not arg:
                raise UsageError(f"--allow {kind} needs a folder: --allow {kind}:DIR")
            p = Path(arg)
            if not p.is_dir():
                raise UsageError(f"--allow {spec}: {arg} is not a folder")
            if fs_root is not None and fs_root != p.resolve():
                raise UsageError("only one fs folder can be granted")
            fs_root, fs_write = p.resolve(), fs_write or kind == "fs"
        elif kind == "env":
            env = True
            if arg:
                names = (names or frozenset()) | frozenset(x for x in arg.split(",") if x)
        else:
            raise UsageError(f"unknown grant '{spec}' (known: fs:DIR, fs-ro:DIR, env, env:NAME,...)")
    return Grants(fs_root, fs_write, env, names, tuple(specs))


def _str(x: Any, fn: str) -> str:
    if type(x) is not str:
        raise VMError("TypeError", f"{fn} needs a string, got {type_name(x)}")
    return x


def _fs(grants: Grants) -> Callable[[Any], dict]:
    root = grants.fs_root
    assert root is not None

    def make(rt: Any) -> dict[str, tuple[int, Callable]]:
        def where(p: Any, fn: str) -> Path:
            rel = _str(p, f"fs.{fn}")
            if "\0" in rel or os.path.isabs(rel):
                raise VMError("PermissionError", f"fs.{fn}: {rel!r} is not a path inside the granted folder")
            full = (root / rel).resolve()
            if full != root and root not in full.parents:
                raise VMError("PermissionError", f"fs.{fn}: {rel!r} leaves the granted folder")
            return full

        def need_write(fn: str) -> None:
            if not grants.fs_write:
                raise VMError("PermissionError", f"fs.{fn}: the folder was granted read-only (fs-ro)")

        def read(p: Any) -> str:
            f = where(p, "read")
            try:
                if f.stat().st_size > MAX_FILE_BYTES:
                    raise VMError("ResourceError", f"fs.read: file larger than {MAX_FILE_BYTES} bytes")
                rt.meter.charge_memory(f.stat().st_size)
                return f.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                raise VMError("NativeError", f"fs.read: no such file {p!r}") from None

        def write(p: Any, text: Any, mode: str = "w") -> None:
            need_write("write")
            f = where(p, "write")
            data = _str(text, "fs.write")
            rt.meter.charge_output(len(data.encode("utf-8", "surrogatepass")))
            with open(f, mode, encoding="utf-8") as fh:
                fh.write(data)

        def listdir(p: Any) -> list:
            d = where(p, "list")
            if not d.is_dir():
                raise VMError("NativeError", f"fs.list: not a folder {p!r}")
            return sorted(x.name for x in d.iterdir())

        def remove(p: Any) -> None:
            need_write("remove")
            f = where(p, "remove")
            if f == root or f.is_dir():
                raise VMError("PermissionError", "fs.remove: only files can be removed")
            f.unlink()

        return {"read": (1, read), "write": (2, write), "append": (2, lambda p, t: write(p, t, "a")),
                "exists": (1, lambda p: where(p, "exists").exists()), "list": (1, listdir),
                "remove": (1, remove)}

    return make


def _env(grants: Grants) -> Callable[[Any], dict]:
    def make(rt: Any) -> dict[str, tuple[int, Callable]]:
        def get(name: Any) -> Any:
            n = _str(name, "env.get")
            if grants.env_names is not None and n not in grants.env_names:
                raise VMError("PermissionError", f"env.get: variable {n!r} was not granted")
            return os.environ.get(n)

        return {"get": (1, get)}

    return make


def capability_natives(grants: Grants) -> dict[str, Any]:
    """Native module factories for what was granted, keyed by module name."""
    out: dict[str, Any] = {}
    if grants.fs_root is not None:
        out["fs"] = (_fs(grants), "granted folder: read, write, append, exists, list, remove")
    if grants.env:
        out["env"] = (_env(grants), "environment variables: get")
    return out
