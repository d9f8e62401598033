"""A minimal single-asset trading environment (gymnasium) built from the feature rows.

Observation at step ``t``: the scaled feature row ``t`` plus the current position.
Actions: 0 = flat, 1 = long (and 2 = short when ``allow_short``). Taking action ``a`` at
``t`` holds position ``pos(a)`` from bar ``t`` to ``t+1`` and earns
``reward = pos * next_bar_return[t] - cost * |pos - previous pos|`` (times ``reward_scale``
so typical daily rewards are O(1) for the optimiser). One episode walks the whole
training window once, oldest bar first; nothing after the window is ever seen.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from aitrader.core.errors import ModelError

POSITIONS: tuple[float, ...] = (0.0, 1.0, -1.0)  # action index -> position
FLAT, LONG, SHORT = 0, 1, 2


class TradingEnv(gym.Env):
    """Step through ``features`` (n, f) with next-bar ``returns`` (n,)."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        features: np.ndarray,
        returns: np.ndarray,
        *,
        cost: float = 0.0005,
        allow_short: bool = False,
        reward_scale: float = 100.0,
    ) -> None:
        super().__init__()
        features = np.asarray(features, dtype=np.float32)
        returns = np.asarray(returns, dtype=np.float64)
        if features.ndim != 2 or len(features) != len(returns):
            raise ModelError(f"trading env: features {features.shape} and returns {returns.shape} do not match")
        if len(features) < 2:
            raise ModelError("trading env: need at least 2 rows")
        if not np.isfinite(features).all():
            raise ModelError("trading env: features must be imputed (no NaN/inf)")
        self.features = features
        self.returns = np.nan_to_num(returns, nan=0.0, posinf=0.0, neginf=0.0)
        self.cost = float(cost)
        self.reward_scale = float(reward_scale)
        self.allow_short = allow_short
        n_features = features.shape[1]
        self.observation_space = spaces.Box(low=-np.inf, high=np.inf, shape=(n_features + 1,), dtype=np.float32)
        self.action_space = spaces.Discrete(3 if allow_short else 2)
        self._t = 0
        self._pos = 0.0

    def _obs(self) -> np.ndarray:
        return np.append(self.features[self._t], np.float32(self._pos)).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._t = 0
        self._pos = 0.0
        return self._obs(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        new_pos = POSITIONS[int(action)]
        pnl = new_pos * self.returns[self._t] - self.cost * abs(new_pos - self._pos)
        self._pos = new_pos
        self._t += 1
        terminated = self._t >= len(self.features) - 1  # the last row has no next-bar return
        return self._obs(), float(pnl * self.reward_scale), terminated, False, {"pnl": float(pnl)}


def observations(features: np.ndarray, position: float = 0.0) -> np.ndarray:
    """Observations for scoring: each feature row with the given (default flat) position."""
    features = np.asarray(features, dtype=np.float32)
    pos = np.full((len(features), 1), position, dtype=np.float32)
    return np.concatenate([features, pos], axis=1)
