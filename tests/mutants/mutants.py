"""Planted bugs for `make mutants` (tests/mutants/harness.py): each replaces one exact piece of
the code (found exactly once) with a plausible mistake."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    name: str
    area: str
    path: str
    old: str
    new: str
    what: str


MUTANTS = [
    Mutant("discount_squared", "agent", "dqn/core/td.py",
           "return reward_scale * reward + gamma * bootstrap * next_value",
           "return reward_scale * reward + gamma * gamma * bootstrap * next_value",
           "a wrong discount: gamma^2 in the TD target"),
    Mutant("loss_gradient_halved", "agent", "dqn/core/td.py",
           "diff * (\n        2.0 / diff.shape[1])", "diff * (\n        1.0 / diff.shape[1])",
           "the MSE gradient half its true value (as if the loss were halved)"),
    Mutant("act_with_target", "agent", "dqn/core/agent.py",
           "return self._q(False, obs, noise).argmax(dim=-1)",
           "return self._q(True, obs, noise).argmax(dim=-1)",
           "acting (and evaluating) with the target network"),
    Mutant("no_terminal_mask", "agent", "dqn/core/td.py",
           "        stop = stop | terminated\n", "        stop = stop & terminated\n",
           "terminal_masking = true silently ignored"),
    Mutant("slow_target_copy", "target", "dqn/core/agent.py",
           'elif c.target == "hard_steps" and step % c.target_period == 0:',
           'elif c.target == "hard_steps" and step % (2 * c.target_period) == 0:',
           "hard target copies half as often as configured"),
    Mutant("slow_epsilon_decay", "schedules", "dqn/core/schedules.py",
           "value = exponential(step, c.epsilon_start, c.epsilon_end, c.epsilon_decay)",
           "value = exponential(step, c.epsilon_start, c.epsilon_end, 1.5 * c.epsilon_decay)",
           "per-step epsilon decaying 1.5x slower"),
    Mutant("half_memory", "replay", "dqn/core/replay.py",
           "idx = torch.minimum((uniform * self.count[:, None]).long(), top)",
           "idx = torch.minimum((uniform * (self.count[:, None] // 2 + 1)).long(), top)",
           "uniform sampling from only the first half of the filled memory"),
    Mutant("no_importance_weights", "replay", "dqn/core/replay.py",
           "weight = importance_weights(prob, lowest, beta)",
           "weight = importance_weights(prob, lowest, 0.0 * beta)",
           "prioritized replay without importance-sampling correction"),
    Mutant("half_updates", "train loop", "dqn/core/train.py",
           "step % c.train_frequency == 0", "step % (2 * c.train_frequency) == 0",
           "half the gradient updates"),
    Mutant("nstep_horizon_off_by_one", "n-step", "dqn/core/agent.py",
           'c.gamma ** batch["horizon"].to(', 'c.gamma ** (batch["horizon"] - 1).to(',
           "n-step targets discounted by gamma^(m-1) instead of gamma^m"),
    Mutant("adam_eps", "optimizer", "dqn/core/optim.py", "EPS = 1e-8", "EPS = 1e-6",
           "Adam's epsilon 1e-6 instead of 1e-8"),
    Mutant("cartpole_reset_stream", "envs", "dqn/core/envs.py",
           "counter = self.episode[idx, None] * np.uint64(4)",
           "counter = self.episode[idx, None] * np.uint64(3)",
           "CartPole's autoreset states from overlapping counters (one component reused)"),
    Mutant("default_lr", "config defaults", "dqn/base/config.py",
           "lr: float = 1e-3", "lr: float = 7e-4", "the default learning rate 7e-4"),
    Mutant("default_buffer", "config defaults", "dqn/base/config.py",
           "buffer_size: int = 5_000", "buffer_size: int = 4_000",
           "the default replay memory 4,000 transitions"),
]
