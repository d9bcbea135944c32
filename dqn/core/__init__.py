"""The seed-batched DQN agent (torch): seeding, vectorised environments, networks (MLP, BatchNorm,
dueling, noisy), replay (uniform, prioritized, n-step), the optimiser, schedules, the agent's
maths, the training loop, and a plain-torch reference agent.

May import: dqn.base.
"""
