"""The model registry: versioned, checksummed artifacts with a promotion gate.

Layout (under ``<home>/models``)::

    <SYMBOL>/<model>/<version>/manifest.json      feature names, label config, window,
                               <artifact files>   metrics, libraries, seed, profile, sha256s
    <SYMBOL>/<model>/current.json                 {"version", "promoted_at", "history", "gate_log"}

* Versions are ``YYYYMMDDTHHMMSSffffffZ-<6 hex>``: they sort by creation time.
* A version directory is written under a temp name and renamed into place, so a reader
  never sees a half-written version; ``current.json`` is replaced atomically.
* :meth:`ModelRegistry.load_current` hashes every file listed in the manifest BEFORE any
  deserialisation (joblib, pickle and torch files can run code when loaded) and loads
  from a private copy of exactly the bytes it verified. A missing, extra, corrupt or
  tampered file, or a feature list that differs from what the caller will feed, is
  refused with :class:`~aitrader.core.errors.IntegrityError` naming the file or features.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import platform
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aitrader.core.errors import IntegrityError, ModelError
from aitrader.models.base import Model
from aitrader.models.locks import exclusive_lock
from aitrader.core.paths import Home, atomic_write_text

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
CURRENT = "current.json"
_VERSION_RE = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{6}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-^=]{0,39}$")
# Libraries whose versions are recorded: an artifact may not load under another major.
_LIBRARIES = ("numpy", "pandas", "scikit-learn", "xgboost", "lightgbm", "torch", "stable-baselines3", "joblib")
_GATE_LOG_LEN = 50

ModelClassMap = Mapping[str, type[Model]]


def new_version_id(now: datetime | None = None) -> str:
    """A sortable, unique version id, e.g. ``20261122T001500123456Z-3fa9c1``."""
    now = now or datetime.now(UTC)
    return f"{now.strftime('%Y%m%dT%H%M%S%f')}Z-{secrets.token_hex(3)}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in _LIBRARIES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[lib] = importlib.metadata.version(lib)
    return out


def _utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _jsonable(value: Any) -> Any:
    """Make metrics/configs JSON-safe (numpy scalars, timestamps, NaN -> null)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    return value


def _default_model_classes() -> ModelClassMap:
    try:
        from aitrader.models.zoo import MODEL_CLASSES
    except ImportError as exc:  # the zoo is optional for tests that bring their own classes
        raise ModelError(f"model zoo not available ({exc})") from None
    classes: dict[str, type[Model]] = dict(MODEL_CLASSES)
    with contextlib.suppress(ImportError):
        from aitrader.models.meta import MetaModel

        classes.setdefault(MetaModel.name, MetaModel)
    return classes


def _pooled_class(model: str, recorded: str) -> type[Model] | None:
    """A universe's pooled sequence model shares its kind name (lstm, transformer) with the
    per-symbol one; the manifest's recorded class tells them apart."""
    try:
        from aitrader.models.universe_seq import POOLED_SEQUENCE_CLASSES
    except ImportError:
        return None
    cls = POOLED_SEQUENCE_CLASSES.get(model)
    return cls if cls is not None and recorded == f"{cls.__module__}:{cls.__qualname__}" else None


@dataclass
class LoadedModel:
    """A verified model with its registry identity; delegates ``predict_proba``."""

    name: str
    version: str
    model: Model
    manifest: dict[str, Any]
    promoted_how: str = ""  # "gate" | "manual" | "" (how the current version became current)

    @property
    def feature_names(self) -> list[str]:
        return list(self.manifest.get("feature_names", []))

    @property
    def kind(self) -> str:
        return str(getattr(self.model, "kind", "tabular"))

    @property
    def metadata(self) -> dict[str, Any]:
        return self.model.metadata

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(X)


@dataclass(frozen=True)
class VersionInfo:
    """One stored version as listed by :meth:`ModelRegistry.list_versions`."""

    symbol: str
    model: str
    version: str
    path: Path
    created_at: str
    metrics: dict[str, Any]
    status: str  # "current" | "candidate" | "previous" (was promoted once)
    manifest: dict[str, Any] = field(repr=False, default_factory=dict)


class ModelRegistry:
    """Stores, verifies, promotes and loads model versions under one root directory."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        keep_versions: int = 5,
        model_classes: ModelClassMap | None = None,
    ) -> None:
        self.root = Path(root)
        self.keep_versions = max(1, int(keep_versions))
        self._model_classes = model_classes

    @classmethod
    def for_home(cls, home: Home, *, keep_versions: int = 5, model_classes: ModelClassMap | None = None) -> ModelRegistry:
        return cls(home.models, keep_versions=keep_versions, model_classes=model_classes)

    # ----------------------------------------------------------------- paths
    def _dir(self, symbol: str, model: str) -> Path:
        for what, name in (("symbol", symbol), ("model", model)):
            if not _NAME_RE.match(name):
                raise ModelError(f"bad {what} name {name!r} for the model registry")
        return self.root / symbol / model

    def version_dir(self, symbol: str, model: str, version: str) -> Path:
        if not _VERSION_RE.match(version):
            raise ModelError(f"bad version id {version!r} (expected e.g. 20261122T001500000000Z-3fa9c1)")
        return self._dir(symbol, model) / version

    @contextlib.contextmanager
    def _locked(self, symbol: str, model: str) -> Iterator[None]:
        # Short blocking lock around read-modify-write of current.json and pruning.
        with exclusive_lock(self._dir(symbol, model) / ".lock", what="registry update", blocking=True):
            yield

    # ----------------------------------------------------------------- state
    def _read_state(self, symbol: str, model: str) -> dict[str, Any]:
        p = self._dir(symbol, model) / CURRENT
        if not p.is_file():
            return {"version": None, "promoted_at": None, "history": [], "gate_log": []}
        try:
            state = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # ValueError: bad JSON or not UTF-8 at all
            raise ModelError(f"{p}: unreadable current pointer ({type(exc).__name__})") from None
        # A pointer someone edited into another shape must not crash every reader.
        if not isinstance(state, dict):
            raise ModelError(f"{p}: current pointer is a JSON {type(state).__name__}, not an object")
        version = state.get("version")
        if version is not None and not (isinstance(version, str) and _VERSION_RE.match(version)):
            raise ModelError(f"{p}: current pointer names a bad version {version!r}")
        for key in ("history", "gate_log"):
            state.setdefault(key, [])
            if not isinstance(state[key], list):
                raise ModelError(f"{p}: current pointer's {key!r} is not a list")
        state["history"] = [h for h in state["history"] if isinstance(h, dict)]
        return state

    def _write_state(self, symbol: str, model: str, state: dict[str, Any]) -> None:
        state["gate_log"] = state.get("gate_log", [])[-_GATE_LOG_LEN:]
        atomic_write_text(self._dir(symbol, model) / CURRENT, json.dumps(_jsonable(state), indent=2) + "\n")

    def current_version(self, symbol: str, model: str) -> str | None:
        v = self._read_state(symbol, model).get("version")
        return str(v) if v else None

    def read_manifest(self, symbol: str, model: str, version: str) -> dict[str, Any]:
        p = self.version_dir(symbol, model, version) / MANIFEST
        if not p.is_file():
            raise IntegrityError(f"{p}: manifest missing (version {version} of {symbol}/{model})")
        try:
            manifest = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # ValueError: bad JSON or not UTF-8 at all
            raise IntegrityError(f"{p}: manifest is not valid JSON") from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            raise IntegrityError(f"{p}: manifest has no file checksums")
        return manifest

    def symbols(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def model_names(self, symbol: str) -> list[str]:
        d = self.root / symbol
        return sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []

    def _version_ids(self, symbol: str, model: str) -> list[str]:
        d = self._dir(symbol, model)
        if not d.is_dir():
            return []
        return sorted(p.name for p in d.iterdir() if p.is_dir() and _VERSION_RE.match(p.name))

    def list_versions(self, symbol: str, model: str) -> list[VersionInfo]:
        """Every stored version, oldest first, with its status and metrics."""
        try:
            state = self._read_state(symbol, model)
        except ModelError as exc:  # list what is there; the pointer's problem is the status
            log.error("%s", exc)
            state = {"version": None, "history": [], "error": str(exc)}
        promoted = {h.get("version") for h in state.get("history", [])}
        out = []
        for v in self._version_ids(symbol, model):
            try:
                manifest = self.read_manifest(symbol, model, v)
            except IntegrityError as exc:
                manifest = {"error": str(exc)}
            status = "current" if v == state.get("version") else "previous" if v in promoted else "candidate"
            status = "unknown" if state.get("error") else status
            out.append(VersionInfo(symbol=symbol, model=model, version=v, path=self.version_dir(symbol, model, v),
                                   created_at=str(manifest.get("created_at", "")),
                                   metrics=dict(manifest.get("metrics") or {}), status=status, manifest=manifest))
        return out

    def gate_log(self, symbol: str, model: str) -> list[dict[str, Any]]:
        return list(self._read_state(symbol, model).get("gate_log", []))

    # ----------------------------------------------------------------- write
    def register(
        self,
        symbol: str,
        model_name: str,
        model: Model,
        *,
        feature_names: Sequence[str],
        label_config: Mapping[str, Any],
        training_window: Mapping[str, Any],
        metrics: Mapping[str, Any],
        seed: int,
        profile: str,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Save ``model`` as a new candidate version and return its id (never promotes).

        The artifact and manifest are written into a temp directory inside the model's
        directory and renamed into place, so a crash never leaves a half-written version.
        """
        mdir = self._dir(symbol, model_name)
        mdir.mkdir(parents=True, exist_ok=True)
        version = new_version_id()
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=mdir))
        try:
            model.save(tmp)
            files = {
                p.relative_to(tmp).as_posix(): sha256_file(p)
                for p in sorted(tmp.rglob("*"))
                if p.is_file() and p.name != MANIFEST
            }
            if not files:
                raise ModelError(f"{model_name}.save() wrote no files")
            manifest = {
                "symbol": symbol,
                "model": model_name,
                "version": version,
                "class": f"{type(model).__module__}:{type(model).__qualname__}",
                "feature_names": list(feature_names),
                "label": dict(label_config),
                "training_window": dict(training_window),
                "metrics": dict(metrics),
                "libraries": library_versions(),
                "seed": int(seed),
                "profile": profile,
                "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
                "model_metadata": _safe_metadata(model),
                "files": files,
                **dict(extra or {}),
            }
            text = json.dumps(_jsonable(manifest), indent=2, sort_keys=False) + "\n"
            (tmp / MANIFEST).write_text(text, encoding="utf-8")
            os.replace(tmp, mdir / version)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("registered %s/%s version %s (%d file(s))", symbol, model_name, version, len(files))
        return version

    def promote_if_better(
        self, symbol: str, model: str, version: str, *, tolerance: float = 0.0, metric: str | None = None
    ) -> tuple[bool, str]:
        """The edge gate (:func:`aitrader.models.gate.promotion_verdict`): promote ``version``
        only if its manifest records an out-of-sample edge over the naive baselines, no leak
        alarm, and it is no worse than the current version on their latest common
        out-of-sample rows (log-loss, ``tolerance``). The first version gets no exception.

        ``metric`` is accepted for old callers and ignored: the gate is log-loss against the
        baselines. Otherwise the version stays a candidate; the reason is logged and kept
        in ``current.json``.
        """
        from aitrader.models.gate import promotion_verdict

        with self._locked(symbol, model):
            state = self._read_state(symbol, model)
            manifest = self.read_manifest(symbol, model, version)
            cur = state.get("version")
            if cur == version:
                promoted, reason = False, f"{version} is already current"
            else:
                incumbent = None
                if cur and (self._dir(symbol, model) / cur).is_dir():
                    with contextlib.suppress(IntegrityError):
                        incumbent = self.read_manifest(symbol, model, cur)
                promoted, reason = promotion_verdict(manifest, incumbent, tolerance=tolerance)
            state["gate_log"].append({"version": version, "promoted": promoted, "reason": reason, "at": _utcnow()})
            if promoted:
                self._set_current(state, version, how="gate")
            self._write_state(symbol, model, state)
            self._prune_locked(symbol, model, state)
        (log.info if promoted else log.warning)("gate %s/%s: %s", symbol, model, reason)
        return promoted, reason

    @staticmethod
    def _set_current(state: dict[str, Any], version: str, *, how: str) -> None:
        now = _utcnow()
        state["version"] = version
        state["promoted_at"] = now
        state["history"].append({"version": version, "promoted_at": now, "how": how})

    def promote(self, symbol: str, model: str, version: str) -> None:
        """Make ``version`` current regardless of its metrics (manual override)."""
        with self._locked(symbol, model):
            self.read_manifest(symbol, model, version)  # must exist and be readable
            state = self._read_state(symbol, model)
            self._set_current(state, version, how="manual")
            state["gate_log"].append({"version": version, "promoted": True, "reason": "manual promote", "at": _utcnow()})
            self._write_state(symbol, model, state)
        log.info("promoted %s/%s %s manually", symbol, model, version)

    def demote(self, symbol: str, model: str, *, reason: str) -> str | None:
        """Take the current version out of service (the decay watch): no version is current,
        so the ensemble runs without this model and the gate's fallback applies when none is
        left. The version stays stored; ``promote`` or a retrain that passes the gate brings a
        model back. Returns the demoted version (None when nothing was current)."""
        with self._locked(symbol, model):
            state = self._read_state(symbol, model)
            cur = state.get("version")
            if not cur:
                return None
            now = _utcnow()
            state["version"] = None
            state.setdefault("demoted", []).append({"version": cur, "at": now, "reason": reason})
            state["gate_log"].append({"version": cur, "promoted": False, "reason": f"demoted: {reason}", "at": now})
            self._write_state(symbol, model, state)
        log.warning("demoted %s/%s %s: %s", symbol, model, cur, reason)
        return str(cur)

    def rollback(self, symbol: str, model: str) -> str:
        """Return to the previously promoted version that still exists; returns its id."""
        with self._locked(symbol, model):
            state = self._read_state(symbol, model)
            cur = state.get("version")
            if not cur:
                raise ModelError(f"{symbol}/{model}: nothing to roll back (no current version)")
            history = [h for h in state["history"] if h.get("version")]
            # Drop the current promotion (and any repeats of it) off the top of the stack.
            while history and history[-1]["version"] == cur:
                history.pop()
            existing = set(self._version_ids(symbol, model))
            while history and (history[-1]["version"] not in existing or history[-1]["version"] == cur):
                history.pop()
            if not history:
                raise ModelError(f"{symbol}/{model}: no previous promoted version to roll back to")
            target = history[-1]["version"]
            self.verify(symbol, model, target)  # like promote: never make a corrupt artifact current
            state["history"] = history
            state["version"] = target
            state["promoted_at"] = _utcnow()
            state.setdefault("rolled_back", []).append({"version": cur, "at": state["promoted_at"]})
            state["gate_log"].append({"version": target, "promoted": True, "reason": f"rollback from {cur}",
                                      "at": state["promoted_at"]})
            self._write_state(symbol, model, state)
        log.warning("rolled back %s/%s from %s to %s", symbol, model, cur, target)
        return str(target)

    def prune(self, symbol: str, model: str) -> list[str]:
        """Delete all but the newest ``keep_versions`` versions, never the current one."""
        with self._locked(symbol, model):
            return self._prune_locked(symbol, model, self._read_state(symbol, model))

    def _prune_locked(self, symbol: str, model: str, state: dict[str, Any]) -> list[str]:
        versions = self._version_ids(symbol, model)
        keep = set(versions[-self.keep_versions:])
        if state.get("version"):
            keep.add(state["version"])
        removed = []
        for v in versions:
            if v not in keep:
                shutil.rmtree(self._dir(symbol, model) / v, ignore_errors=True)
                removed.append(v)
        if removed:
            log.info("pruned %s/%s: %s", symbol, model, ", ".join(removed))
        return removed

    # ----------------------------------------------------------------- read
    def verify(self, symbol: str, model: str, version: str) -> dict[str, Any]:
        """Check every file's sha256 against the manifest (no deserialisation); return it."""
        vdir = self.version_dir(symbol, model, version)
        manifest = self.read_manifest(symbol, model, version)
        self._verified_copy(vdir, manifest, None)
        return manifest

    @staticmethod
    def _verified_copy(vdir: Path, manifest: Mapping[str, Any], dest: Path | None) -> None:
        """Hash each listed file; if ``dest`` is given, copy exactly the verified bytes there."""
        files: Mapping[str, str] = manifest["files"]
        present = {p.relative_to(vdir).as_posix() for p in vdir.rglob("*") if p.is_file() and p.name != MANIFEST}
        extra = sorted(present - set(files))
        if extra:
            raise IntegrityError(f"{vdir / extra[0]}: file not listed in the manifest (refusing to load)")
        for rel, expected in files.items():
            src = vdir / rel
            if ".." in Path(rel).parts or Path(rel).is_absolute():
                raise IntegrityError(f"{vdir / MANIFEST}: bad file path {rel!r} in manifest")
            if not src.is_file():
                raise IntegrityError(f"{src}: artifact file missing")
            data = src.read_bytes()
            if hashlib.sha256(data).hexdigest() != expected:
                raise IntegrityError(f"{src}: sha256 does not match the manifest (corrupt or tampered)")
            if dest is not None:
                out = dest / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(data)

    def _resolve_class(self, model: str, manifest: Mapping[str, Any]) -> type[Model]:
        classes = self._model_classes if self._model_classes is not None else _default_model_classes()
        cls = classes.get(model)
        if cls is None and model == "meta":  # the self-learned meta-model is always known
            from aitrader.models.meta import MetaModel

            cls = MetaModel
        if cls is None:
            raise ModelError(f"unknown model {model!r} (known: {', '.join(sorted(classes))})")
        recorded = str(manifest.get("class", ""))
        actual = f"{cls.__module__}:{cls.__qualname__}"
        if recorded and recorded != actual:
            pooled = _pooled_class(model, recorded) if self._model_classes is None else None
            if pooled is None:
                raise IntegrityError(f"{model}: artifact was written by {recorded}, not {actual}")
            cls = pooled
        return cls

    def load_version(
        self, symbol: str, model: str, version: str, *, expected_features: Sequence[str] | None = None
    ) -> LoadedModel:
        """Verify then load one version (see :meth:`load_current`)."""
        vdir = self.version_dir(symbol, model, version)
        if not vdir.is_dir():
            raise IntegrityError(f"{vdir}: version directory missing")
        manifest = self.read_manifest(symbol, model, version)
        check_features(manifest.get("feature_names", []), expected_features, where=f"{symbol}/{model} {version}")
        cls = self._resolve_class(model, manifest)
        with tempfile.TemporaryDirectory(prefix="aitrader-load-") as tmp:
            # Load from a private copy of the exact bytes we hashed: no swap between check and load.
            self._verified_copy(vdir, manifest, Path(tmp))
            try:
                obj = cls.load(Path(tmp))
            except Exception as exc:
                raise ModelError(f"{vdir}: could not load {model} ({type(exc).__name__}: {exc})") from None
        return LoadedModel(name=model, version=version, model=obj, manifest=manifest)

    def load_current(
        self, symbol: str, model: str, *, expected_features: Sequence[str] | None = None
    ) -> LoadedModel:
        """Load the current version after verifying every file's sha256 and the features.

        ``expected_features`` are the columns the caller will feed, in order; ``None``
        skips the feature check. Raises :class:`IntegrityError` (naming the file or the
        features) or :class:`ModelError` (no current version).
        """
        state = self._read_state(symbol, model)
        version = str(state.get("version") or "")
        if not version:
            raise ModelError(f"no current {model} model for {symbol}: train one with 'aitrader train --symbols {symbol}'")
        loaded = self.load_version(symbol, model, version, expected_features=expected_features)
        hist = [h for h in state.get("history", []) if h.get("version") == version]
        loaded.promoted_how = str(hist[-1].get("how", "")) if hist else ""
        return loaded

    def find_by_fingerprint(self, symbol: str, model: str, fingerprint: str) -> str | None:
        """The newest version trained from exactly the same inputs, if any (for idempotent retrain)."""
        for info in reversed(self.list_versions(symbol, model)):
            if info.manifest.get("fingerprint") == fingerprint:
                return info.version
        return None


def check_features(actual: Sequence[str], expected: Sequence[str] | None, *, where: str) -> None:
    """Raise :class:`IntegrityError` naming the difference if the feature lists differ."""
    if expected is None:
        return
    actual, expected = list(actual), list(expected)
    if actual == expected:
        return
    missing = [f for f in actual if f not in set(expected)]
    extra = [f for f in expected if f not in set(actual)]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"model needs {', '.join(missing[:5])}{'...' if len(missing) > 5 else ''} not provided")
        if extra:
            parts.append(f"provided {', '.join(extra[:5])}{'...' if len(extra) > 5 else ''} unknown to the model")
        raise IntegrityError(f"{where}: feature mismatch: {'; '.join(parts)}")
    raise IntegrityError(f"{where}: feature mismatch: same features in a different order")


def _safe_metadata(model: Model) -> dict[str, Any]:
    try:
        meta = model.metadata
    except Exception:  # metadata is informative only
        return {}
    try:
        return json.loads(json.dumps(_jsonable(meta), default=str))
    except (TypeError, ValueError):
        return {}


def registry_from_settings(home: Home, settings: Any, *, model_classes: ModelClassMap | None = None,
                           ) -> ModelRegistry:
    """The registry for ``home`` with ``settings.models.keep_versions``."""
    return ModelRegistry(home.models, keep_versions=settings.models.keep_versions, model_classes=model_classes)


__all__ = [
    "IntegrityError",
    "LoadedModel",
    "ModelRegistry",
    "VersionInfo",
    "check_features",
    "new_version_id",
    "registry_from_settings",
    "sha256_file",
]
