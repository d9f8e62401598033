"""PPO (stable-baselines3) trading policy exposed as a P(up) model.

Trained on :class:`~aitrader.models.trading_env.TradingEnv` over the training window
(one episode = the window, oldest bar first); it ignores the labels and learns from the
next-bar ``returns`` passed to ``fit``. ``predict_proba`` scores each row with a flat
position in the observation and returns the policy's probability of going long; with
``allow_short`` it is ``P(long) + P(flat) / 2`` (flat is neutral, short counts as "down").

Only the policy's ``state_dict`` is saved (``policy.pt``, loaded with ``weights_only=True``):
the policy is rebuilt from the parameters in ``meta.json``, so no pickled objects are loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from aitrader.core.errors import ModelError
from aitrader.models.base import BaseModel
from aitrader.models.trading_env import FLAT, LONG, TradingEnv, observations
from aitrader.core.paths import atomic_path


class PPOModel(BaseModel):
    """stable-baselines3 PPO with a small MLP policy on CPU."""

    name: ClassVar[str] = "ppo"
    kind: ClassVar[Literal["tabular", "sequence", "rl"]] = "rl"
    uses_torch: ClassVar[bool] = True
    DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"total_timesteps": 4096, "n_steps": 512, "batch_size": 128, "n_epochs": 4, "hidden": 32,
                  "learning_rate": 3e-4, "gamma": 0.9, "ent_coef": 0.01, "cost": 0.0005,
                  "allow_short": False, "reward_scale": 100.0},
        "full": {"total_timesteps": 40_000, "n_steps": 1024, "batch_size": 128, "n_epochs": 6, "hidden": 64,
                 "learning_rate": 3e-4, "gamma": 0.9, "ent_coef": 0.01, "cost": 0.0005,
                 "allow_short": False, "reward_scale": 100.0},
    }
    FILE = "policy.pt"

    def _policy_kwargs(self) -> dict[str, Any]:
        h = int(self.params["hidden"])
        return {"net_arch": {"pi": [h, h], "vf": [h, h]}, "activation_fn": nn.Tanh}

    def _fit_arrays(self, X: np.ndarray, y: np.ndarray, w: np.ndarray, returns: np.ndarray | None) -> None:
        from stable_baselines3 import PPO
        from stable_baselines3.common.logger import Logger

        if returns is None:
            raise ModelError("ppo: fit needs returns= (next-bar returns aligned with X)")
        p = self.params
        env = TradingEnv(X, returns, cost=float(p["cost"]), allow_short=bool(p["allow_short"]),
                         reward_scale=float(p["reward_scale"]))
        algo = PPO("MlpPolicy", env, n_steps=int(p["n_steps"]), batch_size=int(p["batch_size"]),
                   n_epochs=int(p["n_epochs"]), learning_rate=float(p["learning_rate"]), gamma=float(p["gamma"]),
                   ent_coef=float(p["ent_coef"]), policy_kwargs=self._policy_kwargs(), seed=self.seed,
                   device="cpu", verbose=0)
        # SB3's default logger makes an empty ``$TMPDIR/SB3-<time>`` directory on every fit;
        # a logger with no outputs writes nowhere (the fit reports nothing we keep anyway).
        algo.set_logger(Logger(folder=None, output_formats=[]))
        algo.learn(total_timesteps=int(p["total_timesteps"]), progress_bar=False)
        self._policy = algo.policy
        self._policy.set_training_mode(False)

    def _new_policy(self) -> Any:
        from gymnasium import spaces
        from stable_baselines3.common.policies import ActorCriticPolicy

        n_obs = len(self.feature_names) + 1
        obs_space = spaces.Box(low=-np.inf, high=np.inf, shape=(n_obs,), dtype=np.float32)
        act_space = spaces.Discrete(3 if self.params["allow_short"] else 2)
        return ActorCriticPolicy(obs_space, act_space, lambda _: 0.0, **self._policy_kwargs())

    def _predict_arrays(self, X: np.ndarray) -> np.ndarray:
        obs = torch.from_numpy(observations(X, position=0.0))
        with torch.no_grad():
            dist: Any = self._policy.get_distribution(obs).distribution  # a torch Categorical
            probs = dist.probs.double().numpy()
        p_up = probs[:, LONG]
        if probs.shape[1] == 3:
            p_up = p_up + 0.5 * probs[:, FLAT]
        return p_up

    def _save_model(self, directory: Path) -> list[Path]:
        path = directory / self.FILE
        with atomic_path(path) as tmp:
            torch.save(self._policy.state_dict(), tmp)
        return [path]

    def _load_model(self, directory: Path) -> None:
        state = torch.load(directory / self.FILE, map_location="cpu", weights_only=True)
        self._policy = self._new_policy()
        self._policy.load_state_dict(state)
        self._policy.set_training_mode(False)
