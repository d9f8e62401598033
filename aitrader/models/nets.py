"""Sequence models (PyTorch): an LSTM and a Transformer encoder.

Each row ``t`` is classified from the window of the last ``sequence_length`` scaled feature
rows ending at ``t``. Windows are built from the rows passed in (rows before the first one
are zero = the training mean after scaling), so the first ``sequence_length - 1`` rows of a
slice see a shorter history: pass ``context_rows`` earlier rows for full-quality predictions.
Training uses only the training window's rows and scaler (the base class fits it).

Determinism: seeded, single-threaded by default, ``torch.use_deterministic_algorithms``,
full-batch order from a seeded generator. The best epoch on a chronologically last
validation slice (15% of the labelled windows) is kept (early stopping).
Artifacts: ``weights.pt`` (a ``state_dict``, loaded with ``weights_only=True``); the
architecture lives in the parameters in ``meta.json``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from aitrader.core.errors import ModelError
from aitrader.features.sequence_utils import make_windows
from aitrader.models.base import BaseModel
from aitrader.core.paths import atomic_path


def _windows(X: np.ndarray, length: int) -> np.ndarray:
    """(n, f) -> (n, length, f) float32: the window ending at each row, zero-padded before row 0
    (zero = the training mean, because ``X`` is already scaled)."""
    windows, _mask = make_windows(X, length)
    return np.ascontiguousarray(windows, dtype=np.float32)


class _LSTMNet(nn.Module):
    def __init__(self, n_features: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(self.drop(out[:, -1, :])).squeeze(-1)


class _TransformerNet(nn.Module):
    def __init__(self, n_features: int, length: int, d_model: int, heads: int, layers: int,
                 ff: int, dropout: float) -> None:
        super().__init__()
        self.inp = nn.Linear(n_features, d_model)
        self.pos = nn.Parameter(torch.zeros(1, length, d_model))
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=ff, dropout=dropout,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 1)
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.inp(x) + self.pos[:, : x.shape[1]])
        return self.head(h[:, -1, :]).squeeze(-1)  # the token of the current bar


class _TorchSequenceModel(BaseModel):
    kind: ClassVar[Literal["tabular", "sequence", "rl"]] = "sequence"
    uses_torch: ClassVar[bool] = True
    FILE = "weights.pt"

    @property
    def context_rows(self) -> int:  # type: ignore[override]
        return int(self.params["sequence_length"]) - 1

    def _build(self) -> nn.Module:
        raise NotImplementedError

    def _fit_arrays(self, X: np.ndarray, y: np.ndarray, w: np.ndarray, returns: np.ndarray | None) -> None:
        p = self.params
        win = _windows(X, int(p["sequence_length"]))
        mask = np.isfinite(y)
        xs, ys, ws = win[mask], y[mask].astype(np.float32), w[mask].astype(np.float32)
        n_val = max(1, int(len(xs) * 0.15))
        if len(xs) - n_val < 10:
            raise ModelError(f"{self.name}: too few labelled rows ({len(xs)}) to train")
        xt, yt, wt = (torch.from_numpy(a[:-n_val]) for a in (xs, ys, ws))
        xv, yv, wv = (torch.from_numpy(a[-n_val:]) for a in (xs, ys, ws))
        self._net = self._build()
        opt = torch.optim.AdamW(self._net.parameters(), lr=float(p["lr"]), weight_decay=float(p["weight_decay"]))
        loss_fn = nn.BCEWithLogitsLoss(reduction="none")
        gen = torch.Generator().manual_seed(self.seed)
        batch = int(p["batch_size"])
        best_loss, best_state, since_best = float("inf"), copy.deepcopy(self._net.state_dict()), 0
        for _epoch in range(int(p["epochs"])):
            self._net.train()
            order = torch.randperm(len(xt), generator=gen)
            for start in range(0, len(order), batch):
                idx = order[start:start + batch]
                opt.zero_grad()
                loss = (loss_fn(self._net(xt[idx]), yt[idx]) * wt[idx]).sum() / wt[idx].sum().clamp_min(1e-9)
                loss.backward()
                nn.utils.clip_grad_norm_(self._net.parameters(), 1.0)
                opt.step()
            self._net.eval()
            with torch.no_grad():
                val = float((loss_fn(self._net(xv), yv) * wv).sum() / wv.sum().clamp_min(1e-9))
            if val < best_loss - 1e-6:
                best_loss, best_state, since_best = val, copy.deepcopy(self._net.state_dict()), 0
            else:
                since_best += 1
                if since_best >= int(p["patience"]):
                    break
        self._net.load_state_dict(best_state)
        self._net.eval()

    def _predict_arrays(self, X: np.ndarray) -> np.ndarray:
        win = torch.from_numpy(_windows(X, int(self.params["sequence_length"])))
        out = []
        with torch.no_grad():
            for start in range(0, len(win), 1024):
                out.append(torch.sigmoid(self._net(win[start:start + 1024])).double().numpy())
        return np.concatenate(out)

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


def lstm_net(n_features: int, p: dict[str, Any]) -> nn.Module:
    """The LSTM network from a model's params: the single-symbol and the pooled model build the same one."""
    return _LSTMNet(n_features, int(p["hidden"]), int(p["layers"]), float(p["dropout"]))


def transformer_net(n_features: int, p: dict[str, Any]) -> nn.Module:
    """The Transformer network from a model's params (single-symbol and pooled alike)."""
    return _TransformerNet(n_features, int(p["sequence_length"]), int(p["d_model"]), int(p["heads"]),
                           int(p["layers"]), int(p["ff"]), float(p["dropout"]))


_COMMON_QUICK: dict[str, Any] = {"sequence_length": 30, "epochs": 12, "patience": 4, "batch_size": 64,
                                 "lr": 2e-3, "weight_decay": 1e-4, "dropout": 0.1}
_COMMON_FULL: dict[str, Any] = {"sequence_length": 30, "epochs": 40, "patience": 8, "batch_size": 64,
                                "lr": 1e-3, "weight_decay": 1e-4, "dropout": 0.2}


class LSTMModel(_TorchSequenceModel):
    """One- or two-layer LSTM over the feature window; the last hidden state -> P(up)."""

    name: ClassVar[str] = "lstm"
    DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {**_COMMON_QUICK, "hidden": 16, "layers": 1},
        "full": {**_COMMON_FULL, "hidden": 48, "layers": 2},
    }

    def _build(self) -> nn.Module:
        return lstm_net(len(self.feature_names), self.params)


class TransformerModel(_TorchSequenceModel):
    """A small Transformer encoder with learned positions; the current bar's token -> P(up)."""

    name: ClassVar[str] = "transformer"
    DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {**_COMMON_QUICK, "d_model": 16, "heads": 2, "layers": 1, "ff": 32},
        "full": {**_COMMON_FULL, "d_model": 32, "heads": 4, "layers": 2, "ff": 64},
    }

    def _build(self) -> nn.Module:
        return transformer_net(len(self.feature_names), self.params)
