"""Train DQN on S seeds in lockstep: the algorithm, top to bottom.

Shape letters: S seeds, B batch, N observations per seed, A actions, P parameters per seed,
K evaluation episodes per seed.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import numpy as np
import torch

from dqn.base.config import Config
from dqn.core import envs, noisy
from dqn.core.agent import Agent
from dqn.core.device import cpu_settings, release_freed_memory, resolve_device
from dqn.core.nstep import NStepQueue
from dqn.core.records import FinalWeights, Recorder, Records
from dqn.core.replay import Replay
from dqn.core.schedules import epsilon as epsilon_schedule
from dqn.core.schedules import priority_beta
from dqn.core.seeding import Stream, integers, keys, mix64, normal, stream_seed, uniform

Progress = Callable[[int, dict[str, float]], None]
CHECK_EVERY = 16
"""Evaluation steps between checks that every episode has ended, with the envs on the device
(each check waits for it)."""


def train(config: Config, seeds: list[int], progress: Progress | None = None) -> Records:
    """Train one agent per seed, all in lockstep, and return tidy records of the run.

    On CPU, torch's thread count and denormal flushing are set for the run and restored after
    (see dqn.core.device.cpu_settings).
    """
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and non-empty, got {seeds}")
    device = resolve_device(config.device)
    with cpu_settings(device):
        return _train(config, seeds, device, progress)


def _train(c: Config, seeds: list[int], device: torch.device,
           progress: Progress | None) -> Records:
    S = len(seeds)
    env = envs.make(c.env_id, S, device, c.env_backend)
    obs_dim, n_actions = envs.spaces(env)
    agent = Agent(c, obs_dim, n_actions, [stream_seed(s, "init") for s in seeds], device)
    replay = Replay(S, c.buffer_size, obs_dim, device, horizon=c.n_step > 1,
                    priority_alpha=c.priority_alpha if c.prioritized_replay else None,
                    priority_eps=c.priority_eps)
    # n-step: each seed's pending transitions, released to replay once complete (dqn.core.nstep)
    pending = NStepQueue(S, c.n_step, obs_dim, c.gamma, device) if c.n_step > 1 else None
    # each seed's random numbers from its own generators (dqn.core.seeding): the same in any batch
    explore_draws = Stream(seeds, "explore", device, uniform())  # (S,) per env step
    action_draws = Stream(seeds, "action", device, integers(n_actions))  # (S,) per env step
    store_draws = Stream(seeds, "store", device, uniform())  # (S,) per env step
    replay_draws = Stream(seeds, "replay", device, uniform(c.batch_size))  # (S, B) per update
    if c.noisy:  # noisy networks: fresh noise per env step, and per update for both networks
        act_noise = Stream(seeds, "noise_act", device, normal(noisy.noise_size(agent.spec)))
        learn_noise = Stream(seeds, "noise_learn", device,
                             normal(2, noisy.noise_size(agent.spec)))  # (S, 2, n) per update
    evaluator = Evaluator(c, seeds, agent)
    rec = Recorder(seeds, device)

    obs = torch.as_tensor(env.reset(keys(seeds, "env")), device=device)  # (S, obs_dim)
    # an env on the host (numpy: the CPU, or gymnasium's) gives its flags to the host for
    # free; one on the device keeps them there, and nothing below waits for it
    host = envs.on_host(env)
    autoreset = np.zeros(S, dtype=bool) if host else torch.zeros(S, dtype=torch.bool,
                                                                  device=device)  # (S,)
    episodes = torch.zeros(S, dtype=torch.long, device=device)  # (S,) finished episodes
    start = time.perf_counter()

    for step in range(1, c.total_steps + 1):
        # act
        eps = epsilon_schedule(c, step, episodes)  # (S,)
        action = agent.act(obs, eps, explore_draws.next(), action_draws.next(),
                           act_noise.next() if c.noisy else None)  # (S,)
        next_obs_env, reward_env, terminated, truncated = env.step(
            action.cpu().numpy() if host else action)  # (S, obs_dim), (S,) x3
        next_obs = torch.as_tensor(next_obs_env, device=device)  # (S, obs_dim)
        done = terminated | truncated  # (S,)

        # store: never the autoreset step, whose "transition" spans two episodes (and with
        # store_probability < 1 only a random fraction of the others); with n-step returns,
        # the n-step transition completed by this step, if any
        keep = torch.as_tensor(~autoreset, device=device)  # (S,)
        transition = (obs, action, torch.as_tensor(reward_env, device=device,
                                                   dtype=torch.float32),
                      next_obs, torch.as_tensor(terminated, device=device),
                      torch.as_tensor(truncated, device=device))
        horizon = None
        if pending is not None:
            released = pending.step(*transition, valid=keep)
            transition, horizon, keep = released.transition, released.horizon, released.ready
        if c.store_probability < 1.0:
            keep &= store_draws.next() < c.store_probability
        replay.add(*transition, keep, horizon=horizon, every=pending is None and host
                   and c.store_probability == 1.0 and not autoreset.any())
        rec.episode_step(step, reward_env, done, autoreset, eps)

        # learn: only seeds holding a full batch move (memory clearing can empty a seed's);
        # each gradient step also keeps up the 'none' and 'soft' targets
        if step > c.learning_starts and step % c.train_frequency == 0:
            ready = replay.count >= c.batch_size  # (S,)
            for _ in range(c.gradient_steps):
                batch = replay.sample(replay_draws.next(), beta=priority_beta(c, step))
                stats = agent.update(batch, ready, learn_noise.next() if c.noisy else None)
                rec.update(stats)
                if c.prioritized_replay:  # the sampled transitions' new TD errors
                    replay.update_priorities(batch["index"], stats.td_error, ready)

        # episode ends: count them, clear memory if asked
        if not host or done.any():  # (on the device: masked ops, no question asked)
            ended = torch.as_tensor(done, device=device)
            episodes += ended.long()
            if c.clear_memory_each_episode:  # pending n-step transitions are memory too
                replay.clear(ended)
                if pending is not None:
                    pending.clear(ended)

        # sync target: the hard copies due after this env step
        agent.sync_target(step=step, episodes=episodes, episode_ended=done)

        obs, autoreset = next_obs, done

        # evaluate and log
        if step % c.eval_every == 0 or step == c.total_steps:
            rec.evaluation(step, evaluator.run())
        if step % c.log_every == 0 or step == c.total_steps:
            rec.diagnostics(step, eps)
            if progress is not None:
                progress(step, rec.recent())
            release_freed_memory()  # the host heap otherwise keeps what updates freed

    env.close()
    evaluator.close()
    return rec.finish(wall_time_s=time.perf_counter() - start, weights=FinalWeights.of(agent))


class Evaluator:
    """Greedy evaluation: K episodes per seed on a separate vector env of S * K sub-envs.

    Evaluation e's episode k of a seed starts from the key mix64(mix64(seed's eval key, e), k),
    so it depends on that seed alone, whichever seeds share the batch.
    """

    def __init__(self, config: Config, seeds: list[int], agent: Agent) -> None:
        self.S, self.K, self.agent = len(seeds), config.eval_episodes, agent
        self.env = envs.make(config.env_id, self.S * self.K, agent.device, config.env_backend)
        self.keys = keys(seeds, "eval")  # (S,)
        self.calls = 0

    def run(self) -> np.ndarray:
        """Each seed's mean undiscounted return over its K greedy episodes, (S,)."""
        self.calls += 1
        episode_keys = mix64(mix64(self.keys, self.calls)[:, None],
                             np.arange(self.K, dtype=np.uint64))  # (S, K)
        obs = self.env.reset(episode_keys.reshape(-1))  # (S*K, obs_dim)
        device, n, host = self.agent.device, self.S * self.K, envs.on_host(self.env)
        returns = np.zeros(n) if host else torch.zeros(n, dtype=torch.float64, device=device)
        finished = np.zeros(n, dtype=bool) if host else torch.zeros(n, dtype=torch.bool,
                                                                    device=device)  # (S*K,)
        for t in itertools.count(1):
            x = torch.as_tensor(obs, device=device).view(self.S, self.K, -1)  # (S, K, obs_dim)
            action = self.agent.greedy(x).reshape(-1)  # (S*K,)
            obs, reward, terminated, truncated = self.env.step(
                action.cpu().numpy() if host else action)
            if host:
                returns += np.where(finished, 0.0, reward)
            else:  # (later steps of finished episodes add nothing: checking now and then)
                returns += torch.where(finished, 0.0, reward.to(torch.float64))
            finished |= terminated | truncated
            if (host or t % CHECK_EVERY == 0) and finished.all():
                break
        returns = returns if host else returns.cpu().numpy()
        return returns.reshape(self.S, self.K).mean(axis=1)

    def close(self) -> None:
        self.env.close()
