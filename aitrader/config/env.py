"""``AITRADER_*`` environment variables -> a nested mapping merged over the YAML settings.

``AITRADER_<KEY>`` sets a top-level key, ``AITRADER_<SECTION>__<KEY>`` (double underscore)
a key of a section, ``AITRADER_MODELS__WALK_FORWARD__<KEY>`` one level deeper, and
``AITRADER_<SECTION>='{"key": value}'`` several keys of a section at once (JSON).

Why not pydantic-settings' own source: it silently ignores a variable it cannot place
(``AITRADER_RISK_MAX_OPEN_POSITIONS=0``, one underscore, did nothing), wants JSON for a
list (``AITRADER_SYMBOLS=GOOG`` failed with a traceback) and cannot say which variable
was wrong. Here an unknown ``AITRADER_*`` name is refused with a did-you-mean, a list
may be comma-separated, and every error names the variable.
"""

from __future__ import annotations

import difflib
import json
import types
from collections.abc import Iterator, Mapping
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from aitrader.core.errors import ConfigError

PREFIX = "AITRADER_"
# Variables that are ours but not settings (read by the CLI, the kernel cache, tests, cron, bench).
OTHER_VARIABLES = frozenset({
    "AITRADER_HOME", "AITRADER_CONFIG", "AITRADER_NUMBA_CACHE", "AITRADER_CRASH_SEED",
    "AITRADER_NOTIFY_URLS", "AITRADER_INSTALL_DIR", "AITRADER_DASHBOARD_SHOT", "AITRADER_LLM_API_KEY",
})
OTHER_PREFIXES = ("AITRADER_BENCH_",)  # bench/ knobs (AITRADER_BENCH_BARS, AITRADER_BENCH_WF_MODELS, ...)

Loc = tuple[str, ...]


def env_overrides(environ: Mapping[str, str], model: type[BaseModel]) -> tuple[dict[str, Any], dict[Loc, str]]:
    """``(nested values, {location: variable name})`` from the ``AITRADER_*`` variables for the
    settings ``model`` (passed in, so this module never imports the settings it serves).

    Raises :class:`ConfigError` naming the variable on an unknown name or an unreadable value.
    """
    data: dict[str, Any] = {}
    names: dict[Loc, str] = {}
    for raw_name in sorted(environ):
        name = raw_name.upper()
        if not name.startswith(PREFIX) or name in OTHER_VARIABLES or name.startswith(OTHER_PREFIXES):
            continue
        loc, annotation = _locate(name, model)
        value = _parse(name, environ[raw_name], annotation)
        node = data
        for part in loc[:-1]:
            node = node.setdefault(part, {})
        if isinstance(value, dict) and isinstance(node.get(loc[-1]), dict):
            node[loc[-1]].update(value)  # AITRADER_RISK='{...}' and AITRADER_RISK__X together
        else:
            node[loc[-1]] = value
        names[loc] = name
        if isinstance(value, dict) and _model_of(annotation) is not None:
            names.update({(*loc, str(k)): name for k in value})
    return data, names


def known_variables(model: type[BaseModel]) -> list[str]:
    """Every ``AITRADER_*`` name we accept (settings keys, sections, the other variables)."""
    return sorted({*(PREFIX + "__".join(loc).upper() for loc in _settings_paths(model, ())), *OTHER_VARIABLES})


def _settings_paths(model: type[BaseModel], loc: Loc) -> Iterator[Loc]:
    for key, field in model.model_fields.items():
        yield (*loc, key)
        sub = _model_of(field.annotation)
        if sub is not None:
            yield from _settings_paths(sub, (*loc, key))


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The settings section class if ``annotation`` is one (not a list of them)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _locate(name: str, model: type[BaseModel]) -> tuple[Loc, Any]:
    """``AITRADER_RISK__MAX_OPEN_POSITIONS`` -> ``(("risk", "max_open_positions"), int)``."""
    parts = name[len(PREFIX):].lower().split("__")
    loc: Loc = ()
    annotation: Any = None
    current: type[BaseModel] | None = model
    for part in parts:
        field = current.model_fields.get(part) if current is not None else None
        if field is None:
            raise ConfigError(_unknown(name, model))
        loc = (*loc, part)
        annotation = field.annotation
        current = _model_of(annotation)
    return loc, annotation


def _unknown(name: str, model: type[BaseModel]) -> str:
    close = difflib.get_close_matches(name, known_variables(model), n=1, cutoff=0.75)
    hint = f"; did you mean {close[0]}?" if close else ""
    return (f"unknown environment variable {name}{hint} (settings are AITRADER_<KEY> or "
            "AITRADER_<SECTION>__<KEY> with a double underscore; unset it or fix the name)")


def _optional_inner(annotation: Any) -> tuple[bool, Any]:
    """``float | None`` -> ``(True, float)``; anything else -> ``(False, annotation)``."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) < len(get_args(annotation)) and len(args) == 1:
            return True, args[0]
    return False, annotation


def _parse(name: str, value: str, annotation: Any) -> Any:
    """Turn the text of a variable into what the field expects (pydantic validates the rest)."""
    optional, inner = _optional_inner(annotation)
    text = value.strip()
    if optional and text.lower() in ("", "none", "null"):
        return None
    section = _model_of(inner)
    if section is not None:
        return _json(name, text, dict, f"a JSON object of {name[len(PREFIX):].lower().replace('__', '.')} keys, "
                     f"e.g. {name}='{{\"key\": value}}', or one key as {name}__<KEY>=value")
    origin = get_origin(inner)
    if origin is list:
        item = get_args(inner)[0] if get_args(inner) else str
        if text.startswith("[") or _model_of(item) is not None:
            return _json(name, text, list, "a JSON list" if _model_of(item) else "a comma-separated list (A,B) or a JSON list")
        return [p.strip() for p in text.split(",") if p.strip()]
    if origin is dict:
        if text.startswith("{"):
            return _json(name, text, dict, "a JSON object or KEY=VALUE pairs separated by commas")
        return _pairs(name, text)
    return value


def _json(name: str, text: str, kind: type, expected: str) -> Any:
    try:
        out = json.loads(text)
    except ValueError:
        out = None
    if not isinstance(out, kind):
        raise ConfigError(f"environment variable {name}: expected {expected}; got {_short(text)}")
    return out


def _pairs(name: str, text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"environment variable {name}: expected KEY=VALUE pairs separated by commas "
                              f"(e.g. EURUSD=1h,SPX=1d) or a JSON object; got {_short(text)}")
        out[key.strip()] = val.strip()
    return out


def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")
