"""Watch a trained agent: one greedy episode of a finished seed, rendered as a GIF.

The seed's final weights come from its study folder (dqn.store.weights). When they are missing
(weights stay out of git, and older runs did not keep them), `retrain=True` trains that seed
alone with the variant's recorded config: seeds are independent, so the lone seed gets the
numbers it got in its batch, which is checked against its recorded evaluations before its
weights are trusted and kept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import torch

import dqn.core.train
from dqn.base.config import from_dict
from dqn.core.networks import NetSpec, q_values
from dqn.core.records import FinalWeights
from dqn.store.weights import FOLDER, SeedWeights, WeightsError, load, recorded, save

STEP_MS = 20  # CartPole simulates 20 ms per step (its tau): GIFs play in real time


class PlayError(ValueError):
    """Why an episode could not be played or drawn; the message says what to do."""


@dataclass(frozen=True)
class Episode:
    """One greedy episode: its undiscounted return, its length and where its GIF went."""

    ret: float
    steps: int
    gif: Path | None


def network(sw: SeedWeights) -> tuple[NetSpec, torch.Tensor, torch.Tensor]:
    """The seed's network as a batch of one: spec, params (1, P), BatchNorm stats (1, n)."""
    spec = NetSpec(**(sw.spec | {"hidden": tuple(sw.spec["hidden"])}))
    return (spec, torch.as_tensor(sw.params, dtype=torch.float32)[None],
            torch.as_tensor(sw.stats, dtype=torch.float32)[None])


@torch.no_grad()
def greedy_actions(sw: SeedWeights, obs: np.ndarray) -> np.ndarray:
    """argmax_a Q(obs, a) of the seed's final network (BatchNorm in eval mode) for
    observations (N, obs_dim); returns (N,)."""
    spec, params, stats = network(sw)
    x = torch.as_tensor(np.asarray(obs, dtype=np.float32))[None]  # (1, N, obs_dim)
    return q_values(spec, params, stats, x)[0][0].argmax(dim=-1).numpy()  # (N,)


def retrain(study_dir: Path, variant: str, seed: int) -> SeedWeights:
    """Train `seed` of `variant` alone with its recorded config, check its evaluations equal
    the recorded ones, keep its weights in the study folder and return them."""
    try:
        meta = recorded(study_dir, variant, seed)
    except WeightsError as e:
        raise PlayError(str(e)) from None
    config = from_dict(meta["config"], f"{study_dir / 'run.json'}: variant {variant!r}")
    print(f"retraining seed {seed} of {variant} alone ({config.total_steps} steps)")
    records = dqn.core.train.train(config, [seed])
    kept = recorded_evals(study_dir, variant, seed)
    fresh = records.evals
    same = (len(kept) == len(fresh) and np.allclose(
        kept["return"].to_numpy(float), fresh["return"].to_numpy(float), atol=1e-3))
    if not same:
        raise PlayError(f"seed {seed} of {variant} retrained alone does not reproduce its "
                        f"recorded evaluations in {study_dir / 'evals.csv'} (another torch "
                        "build or device?); its weights are not kept")
    w = records.weights
    assert isinstance(w, FinalWeights)
    save(study_dir, variant, [seed], config.hash(), w)
    return load(study_dir, variant, seed)


def play(sw: SeedWeights, gif: Path | None, episode_seed: int = 0, every: int = 2,
         scale: float = 0.5, max_steps: int | None = None) -> Episode:
    """Run one greedy episode (gymnasium's reset(seed=episode_seed)) and, when `gif` is
    given, write every `every`-th frame at `scale` as an endlessly looping GIF."""
    env_id = sw.config["env_id"]
    # rgb_array frames need no display: SDL would otherwise probe for one (and complain)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    try:
        env = gym.make(env_id, render_mode="rgb_array" if gif is not None else None)
        obs, _ = env.reset(seed=episode_seed)
        frames = [env.render()] if gif is not None else []
    except gym.error.DependencyNotInstalled as e:
        raise PlayError(f"{env_id} cannot render here: {e}") from None
    ret, steps, done = 0.0, 0, False
    while not done and (max_steps is None or steps < max_steps):
        action = int(greedy_actions(sw, obs[None])[0])
        obs, reward, terminated, truncated, _ = env.step(action)
        ret, steps, done = ret + float(reward), steps + 1, terminated or truncated
        if gif is not None and steps % every == 0:
            frames.append(env.render())
    env.close()
    if gif is not None:
        _write_gif(frames, gif, scale, STEP_MS * every)
    return Episode(ret, steps, gif)


def recorded_evals(study_dir: Path, variant: str, seed: int) -> pd.DataFrame:
    """The seed's rows of the study's evals.csv, in time order."""
    evals = pd.read_csv(study_dir / "evals.csv")
    rows = evals[(evals["variant"] == variant) & (evals["seed"] == seed)]
    return rows.sort_values("env_step")


def default_gif(study_dir: Path, variant: str, seed: int) -> Path:
    """Beside the weights (so out of git with them): weights/<variant>/seed-<n>.gif."""
    return study_dir / FOLDER / variant / f"seed-{seed}.gif"


def _write_gif(frames: list[np.ndarray], path: Path, scale: float, ms: int) -> None:
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]  # each (H, W, 3) uint8
    if scale != 1.0:
        size = (max(1, round(images[0].width * scale)), max(1, round(images[0].height * scale)))
        images = [im.resize(size, Image.Resampling.LANCZOS) for im in images]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=ms, loop=0,
                   optimize=True)
