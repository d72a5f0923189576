"""Config files on disk: read one YAML file, and merge the files it names under ``include:``.

LiteLLM's ``include:`` (a file name or a list of them, relative to the including file) lets a
config keep its ``model_list`` in another file. The merge is by top-level key: lists are
concatenated in order (the including file's entries first, then each included file's), mappings
are merged key by key with the including file winning a key both set, and any other value set in
both files is refused, since one of them would be silently lost. Included files may include
others; a file included twice on one chain is refused as a cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tollgate.errors import ConfigError

INCLUDE = "include"


def read_yaml(path: Path) -> dict[str, Any]:
    """One YAML file as a mapping (an empty file is an empty mapping); ``ConfigError`` otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read config file {path}: not UTF-8 text (byte {exc.start})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return raw


def read_with_includes(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """``path`` with every file it includes merged in (see the module docstring)."""
    resolved = path.resolve()
    if resolved in chain:
        cycle = " -> ".join(str(p) for p in (*chain, resolved))
        raise ConfigError(f"{INCLUDE}: {resolved} includes itself ({cycle})")
    raw = read_yaml(path)
    names = raw.pop(INCLUDE, None)
    if names is None:
        return raw
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"{path}: {INCLUDE} must be a file name or a list of file names")
    merged = raw
    for name in names:
        included = Path(name) if Path(name).is_absolute() else path.parent / name
        merged = _merge(merged, read_with_includes(included, (*chain, resolved)), included)
    return merged


def _merge(base: dict[str, Any], extra: dict[str, Any], source: Path) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if key not in out or out[key] is None:
            out[key] = value
        elif value is None:
            continue
        elif isinstance(out[key], list) and isinstance(value, list):
            out[key] = [*out[key], *value]
        elif isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = {**value, **out[key]}
        else:
            raise ConfigError(f"{INCLUDE}: '{key}' is set both in {source} and in the file including it")
    return out
