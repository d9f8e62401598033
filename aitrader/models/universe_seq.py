"""Pooled sequence models over a universe: one LSTM and one Transformer on per-symbol windows.

The input of a (symbol, date) row is that symbol's own window of its last ``sequence_length``
feature rows ending at that row (oldest first). Windows never cross symbols and never look
ahead: :func:`window_index` orders the rows by symbol then date and takes the preceding
rows of the same symbol only. A row with fewer than ``sequence_length`` rows of its symbol
up to it (the start of the data, a late listing) has no window: it is neither trained on
nor scored (its score is NaN); nothing is padded, nothing is borrowed from another symbol.
Training batches mix symbols (a seeded shuffle of all training windows).

The networks are the zoo's (:mod:`aitrader.models.nets`); what differs from the zoo's
single-series models is how windows are cut and that the imputer/scaler are fitted on the
rows the *training windows* cover (every one of them dated at or before the fold's last
training date). The best epoch on the chronologically last 15% of the training windows is
kept (early stopping), as in the zoo. Seeded; torch threads bounded like every torch model.

Two entry points:

* :meth:`PooledSequenceModel.fit_windows` / :meth:`~PooledSequenceModel.predict_windows` on a
  raw feature matrix plus a window index (what the walk-forward fitter calls: no copies of
  the panel per job);
* ``fit(X, y)`` / ``predict_proba(X)`` with ``X`` indexed by ``(timestamp, symbol)``, the
  :class:`~aitrader.models.base.Model` interface the registry's loaded versions use: windows
  are cut from the rows of ``X`` itself.

Artifacts: ``weights.pt`` (a ``state_dict``, loaded with ``weights_only=True``) plus the
base class's ``meta.json`` (parameters, imputer, scaler; ``"layout": "panel"``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd
import torch
from torch import nn

from aitrader.core.errors import ModelError
from aitrader.core.paths import atomic_path
from aitrader.models.base import BaseModel, _index_bound
from aitrader.models.nets import lstm_net, transformer_net

SEQUENCE_MODELS: tuple[str, ...] = ("lstm", "transformer")
LAYOUT = "panel"
VALIDATION_SHARE = 0.15
PREDICT_BATCH = 2048


def window_index(date_key: np.ndarray, sym_key: np.ndarray, length: int) -> np.ndarray:
    """Row positions of each row's window, shape ``(n, length)``, oldest first.

    Row ``r``'s window is the ``length`` rows of the symbol ``sym_key[r]`` ending at ``r``
    in ``date_key`` order. Rows with fewer than ``length`` rows of their symbol up to and
    including them get ``-1`` everywhere (no window).
    """
    n = len(date_key)
    if length < 1:
        raise ModelError(f"sequence_length must be >= 1 (got {length})")
    out = np.full((n, length), -1, dtype=np.int64)
    if n == 0:
        return out
    order = np.lexsort((np.asarray(date_key), np.asarray(sym_key)))  # by symbol, then date
    sorted_sym = np.asarray(sym_key)[order]
    new_group = np.r_[True, sorted_sym[1:] != sorted_sym[:-1]]
    group_start = np.flatnonzero(new_group)
    k = np.arange(n) - group_start[np.cumsum(new_group) - 1]  # rows of the symbol before this one
    full = k >= length - 1
    pos = np.arange(n)[full][:, None] + np.arange(-length + 1, 1)[None, :]  # positions in symbol order
    out[order[full]] = order[pos]
    return out


def panel_window_index(index: pd.Index, length: int) -> np.ndarray:
    """:func:`window_index` for a ``(timestamp, symbol)`` MultiIndex."""
    if not isinstance(index, pd.MultiIndex) or index.nlevels != 2:
        raise ModelError("pooled sequence models need rows indexed by (timestamp, symbol)")
    dates = pd.DatetimeIndex(index.get_level_values(0)).asi8
    symbols = pd.factorize(index.get_level_values(1))[0]
    if pd.MultiIndex.from_arrays([dates, symbols]).has_duplicates:
        raise ModelError("pooled sequence models: duplicate (timestamp, symbol) rows")
    return window_index(dates, symbols, length)


class PooledSequenceModel(BaseModel):
    """Common training/prediction over per-symbol windows; subclasses build the network."""

    kind: ClassVar[Literal["tabular", "sequence", "rl"]] = "sequence"
    uses_torch: ClassVar[bool] = True
    FILE = "weights.pt"

    @property
    def context_rows(self) -> int:  # type: ignore[override]
        return int(self.params["sequence_length"]) - 1

    @property
    def length(self) -> int:
        return int(self.params["sequence_length"])

    def _build(self) -> nn.Module:
        raise NotImplementedError

    # ---- the array entry points (walk-forward) ----------------------------------------
    def fit_windows(self, X: np.ndarray, windows: np.ndarray, rows: np.ndarray, y: np.ndarray,
                    *, date_key: np.ndarray) -> Self:
        """Fit on the windows ending at ``rows`` (targets ``y[rows]``; rows without a window or
        a label are dropped). ``X`` is the raw feature matrix (NaN allowed), ``windows`` its
        :func:`window_index`, ``date_key`` orders rows in time (for the validation slice)."""
        rows = np.asarray(rows, dtype=np.int64)
        rows = rows[(windows[rows, 0] >= 0) & np.isfinite(y[rows])]
        classes = np.unique(y[rows])
        if len(rows) < 20 or classes.size < 2:
            raise ModelError(f"{self.name}: need at least 20 labelled windows of both classes to train "
                             f"(got {len(rows)}, classes {classes.tolist()})")
        rows = rows[np.argsort(date_key[rows], kind="stable")]
        cover = np.unique(windows[rows])
        self._fit_scaler(X[cover])
        self._seed_everything()
        self._limit_threads()
        table, local = self._lookup(X, cover, windows[rows])
        try:
            self._train(table, local, y[rows].astype(np.float32))
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{self.name}: training failed: {str(exc).splitlines()[0][:200]}") from exc
        self._train_info = {"train_rows": int(len(cover)), "labelled_rows": int(len(rows)),
                            "positive_rate": float(y[rows].mean()), "train_windows": int(len(rows))}
        return self

    def predict_windows(self, X: np.ndarray, windows: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """P(up) of the windows ending at ``rows``; NaN for rows without a full window."""
        if not self.is_fitted:
            raise ModelError(f"{self.name}: predict called before fit/load")
        rows = np.asarray(rows, dtype=np.int64)
        out = np.full(len(rows), np.nan)
        ok = np.flatnonzero(windows[rows, 0] >= 0)
        if not len(ok):
            return out
        self._limit_threads()
        cover = np.unique(windows[rows[ok]])
        table, local = self._lookup(X, cover, windows[rows[ok]])
        net = self._net
        net.eval()
        probs = []
        with torch.no_grad():
            for start in range(0, len(local), PREDICT_BATCH):
                probs.append(torch.sigmoid(net(table[local[start:start + PREDICT_BATCH]])).double().numpy())
        out[ok] = np.clip(np.concatenate(probs), 0.0, 1.0)
        return out

    # ---- the Model interface (registry, panels) ---------------------------------------
    def fit(self, X: pd.DataFrame, y: pd.Series, *, sample_weight: pd.Series | None = None,
            returns: pd.Series | None = None) -> Self:
        """Fit on a panel slice indexed by ``(timestamp, symbol)`` (windows cut from its rows).
        ``sample_weight`` and ``returns`` are not used by the pooled models."""
        from aitrader.models.labels import up_target

        arr = self._columns(X)
        target = up_target(self._aligned(y, X, "y"))
        windows = panel_window_index(X.index, self.length)
        self.fit_windows(arr, windows, np.arange(len(arr)), target,
                         date_key=pd.DatetimeIndex(X.index.get_level_values(0)).asi8)
        dates = pd.DatetimeIndex(X.index.get_level_values(0)).sort_values()
        self._train_info.update(train_start=_index_bound(dates, 0), train_end=_index_bound(dates, -1))
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """P(up) per row of a ``(timestamp, symbol)``-indexed panel slice; NaN where the row's
        symbol has fewer than ``sequence_length`` rows in ``X`` up to it."""
        arr = self._columns(X)
        if len(arr) == 0:
            return np.empty(0)
        return self.predict_windows(arr, panel_window_index(X.index, self.length), np.arange(len(arr)))

    @property
    def metadata(self) -> dict[str, Any]:
        return {**super().metadata, "layout": LAYOUT}

    # ---- internals ---------------------------------------------------------------------
    def _fit_scaler(self, rows: np.ndarray) -> None:
        med = np.nanmedian(np.where(np.isnan(rows).all(axis=0), 0.0, rows), axis=0)
        self._medians = np.where(np.isfinite(med), med, 0.0)
        filled = np.where(np.isnan(rows), self._medians, rows)
        self._mean = filled.mean(axis=0)
        std = filled.std(axis=0)
        self._scale = np.where(std > 1e-12, std, 1.0)

    def _lookup(self, X: np.ndarray, cover: np.ndarray, windows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The scaled rows the windows cover (one float32 table) and each window's positions in it."""
        raw = X[cover].astype("float64", copy=True)
        raw[~np.isfinite(raw)] = np.nan
        table = torch.from_numpy(np.ascontiguousarray(self._transform(raw), dtype=np.float32))
        return table, torch.from_numpy(np.searchsorted(cover, windows))

    def _train(self, table: torch.Tensor, local: torch.Tensor, y: np.ndarray) -> None:
        p = self.params
        n_val = max(1, int(len(local) * VALIDATION_SHARE))
        if len(local) - n_val < 10:
            raise ModelError(f"{self.name}: too few windows ({len(local)}) to train")
        yt = torch.from_numpy(y)
        tr, va = local[:-n_val], local[-n_val:]
        ytr, yva = yt[:-n_val], yt[-n_val:]
        self._net = self._build()
        opt = torch.optim.AdamW(self._net.parameters(), lr=float(p["lr"]), weight_decay=float(p["weight_decay"]))
        loss_fn = nn.BCEWithLogitsLoss()
        gen = torch.Generator().manual_seed(self.seed)
        batch = int(p["batch_size"])
        best, best_state, since = float("inf"), copy.deepcopy(self._net.state_dict()), 0
        for _epoch in range(int(p["epochs"])):
            self._net.train()
            order = torch.randperm(len(tr), generator=gen)
            for start in range(0, len(order), batch):
                idx = order[start:start + batch]
                opt.zero_grad()
                loss = loss_fn(self._net(table[tr[idx]]), ytr[idx])
                loss.backward()
                nn.utils.clip_grad_norm_(self._net.parameters(), 1.0)
                opt.step()
            val = self._loss(table, va, yva, loss_fn)
            if val < best - 1e-6:
                best, best_state, since = val, copy.deepcopy(self._net.state_dict()), 0
            else:
                since += 1
                if since >= int(p["patience"]):
                    break
        self._net.load_state_dict(best_state)
        self._net.eval()

    def _loss(self, table: torch.Tensor, local: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module) -> float:
        self._net.eval()
        total = 0.0
        with torch.no_grad():
            for start in range(0, len(local), PREDICT_BATCH):
                part = slice(start, start + PREDICT_BATCH)
                total += float(loss_fn(self._net(table[local[part]]), y[part])) * len(local[part])
        return total / max(1, len(local))

    def _fit_arrays(self, X: np.ndarray, y: np.ndarray, w: np.ndarray, returns: np.ndarray | None) -> None:
        raise ModelError(f"{self.name} (pooled): fit needs a (timestamp, symbol) panel; use fit or fit_windows")

    def _predict_arrays(self, X: np.ndarray) -> np.ndarray:
        raise ModelError(f"{self.name} (pooled): predict needs a (timestamp, symbol) panel; use predict_proba")

    def _save_model(self, directory: Path) -> list[Path]:
        path = directory / self.FILE
        with atomic_path(path) as tmp:
            torch.save(self._net.state_dict(), tmp)
        return [path]

    def _load_model(self, directory: Path) -> None:
        state = torch.load(directory / self.FILE, map_location="cpu", weights_only=True)
        self._net = self._build()
        self._net.load_state_dict(state)
        self._net.eval()


# Small on purpose: 250 symbols x 5 folds must fit in minutes on 2 cores (docs/BENCHMARKS.md).
_COMMON: dict[str, Any] = {"sequence_length": 20, "batch_size": 256, "lr": 2e-3, "weight_decay": 1e-4,
                           "dropout": 0.1}
_QUICK: dict[str, Any] = {**_COMMON, "epochs": 3, "patience": 1}
_FULL: dict[str, Any] = {**_COMMON, "epochs": 5, "patience": 2}


class PooledLSTM(PooledSequenceModel):
    """One-layer LSTM over a symbol's window; its last hidden state -> P(beats the median)."""

    name: ClassVar[str] = "lstm"
    DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {**_QUICK, "hidden": 16, "layers": 1},
        "full": {**_FULL, "hidden": 32, "layers": 1},
    }

    def _build(self) -> nn.Module:
        return lstm_net(len(self.feature_names), self.params)


class PooledTransformer(PooledSequenceModel):
    """A one-layer Transformer encoder over a symbol's window; the current bar's token -> P."""

    name: ClassVar[str] = "transformer"
    DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {**_QUICK, "d_model": 16, "heads": 2, "layers": 1, "ff": 32},
        "full": {**_FULL, "d_model": 32, "heads": 4, "layers": 1, "ff": 64},
    }

    def _build(self) -> nn.Module:
        return transformer_net(len(self.feature_names), self.params)


POOLED_SEQUENCE_CLASSES: dict[str, type[PooledSequenceModel]] = {"lstm": PooledLSTM, "transformer": PooledTransformer}


def make_pooled_sequence(name: str, *, profile: Literal["quick", "full"], seed: int, feature_names: list[str],
                         **params: Any) -> PooledSequenceModel:
    try:
        cls = POOLED_SEQUENCE_CLASSES[name]
    except KeyError:
        raise ModelError(f"no pooled sequence model {name!r}: allowed {', '.join(POOLED_SEQUENCE_CLASSES)}") from None
    return cls(profile=profile, seed=seed, feature_names=feature_names, **params)


__all__ = ["POOLED_SEQUENCE_CLASSES", "SEQUENCE_MODELS", "PooledLSTM", "PooledSequenceModel", "PooledTransformer",
           "make_pooled_sequence", "panel_window_index", "window_index"]
