"""The seed-batched Q-network against S independent plain torch.nn models with the same weights.

The flat (S, P) layout is decoded here from its documented order (linear layers in forward
order, weight (in, out) then bias; then each BatchNorm's weight and bias), not with
`dqn.core.networks.unflatten`, so the layout itself is under test too.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dqn.core.netspec import NetSpec, init_params, init_stats, unflatten
from dqn.core.networks import mlp_backward, mlp_forward, q_values

pytestmark = pytest.mark.usefixtures("single_thread_torch")

OBS, HIDDEN, ACTIONS, N = 3, (5, 4), 3, 6
CPU = torch.device("cpu")


def make_spec(batchnorm: bool, dueling: str | None, activation: str = "relu",
              hidden: tuple[int, ...] = HIDDEN, obs: int = OBS, actions: int = ACTIONS) -> NetSpec:
    return NetSpec(obs, actions, hidden, activation, batchnorm, dueling is not None,
                   dueling or "mean")


class RefNet(nn.Module):
    """One seed's network in plain torch.nn: [BN] -> (Linear -> [BN] -> act)* -> head."""

    def __init__(self, obs: int, hidden: tuple[int, ...], actions: int, activation: str,
                 batchnorm: bool, dueling: str | None) -> None:
        super().__init__()
        self.batchnorm, self.dueling = batchnorm, dueling
        self.bn_in = nn.BatchNorm1d(obs) if batchnorm else None
        sizes = (obs, *hidden)
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:], strict=False))
        self.bns = nn.ModuleList(nn.BatchNorm1d(h) for h in hidden) if batchnorm else None
        self.act = {"relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(0.01), "tanh": nn.Tanh()}[
            activation]
        if dueling:
            self.value = nn.Linear(hidden[-1], 1)
            self.advantage = nn.Linear(hidden[-1], actions)
        else:
            self.out = nn.Linear(hidden[-1], actions)

    def linears(self) -> list[nn.Linear]:
        heads = [self.value, self.advantage] if self.dueling else [self.out]
        return [*self.fcs, *heads]

    def norms(self) -> list[nn.BatchNorm1d]:
        return [self.bn_in, *self.bns] if self.batchnorm else []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn_in(x) if self.batchnorm else x
        for i, fc in enumerate(self.fcs):
            h = fc(h)
            if self.batchnorm:
                h = self.bns[i](h)
            h = self.act(h)
        if not self.dueling:
            return self.out(h)
        v, a = self.value(h), self.advantage(h)
        if self.dueling == "mean":
            return v + a - a.mean(dim=1, keepdim=True)
        return v + a - a.max(dim=1, keepdim=True).values

    def load_row(self, row: torch.Tensor, stats_row: torch.Tensor) -> None:
        """Copy one seed's flat parameters (and running stats) in, following the layout."""
        pos = 0

        def take(n: int) -> torch.Tensor:
            nonlocal pos
            pos += n
            return row[pos - n:pos]

        with torch.no_grad():
            for lin in self.linears():
                out_f, in_f = lin.weight.shape
                lin.weight.copy_(take(in_f * out_f).view(in_f, out_f).T)  # stored (in, out)
                lin.bias.copy_(take(out_f))
            for bn in self.norms():
                n = bn.num_features
                bn.weight.copy_(take(n))
                bn.bias.copy_(take(n))
            assert pos == row.numel()
            spos = 0
            for bn in self.norms():
                n = bn.num_features
                bn.running_mean.copy_(stats_row[spos:spos + n])
                bn.running_var.copy_(stats_row[spos + n:spos + 2 * n])
                spos += 2 * n
            assert spos == stats_row.numel()

    def grad_row(self) -> torch.Tensor:
        """This model's parameter gradients laid out like one row of the flat buffer."""
        parts = []
        for lin in self.linears():
            parts += [lin.weight.grad.T.reshape(-1), lin.bias.grad]
        for bn in self.norms():
            parts += [bn.weight.grad, bn.bias.grad]
        return torch.cat(parts)

    def stats_row(self) -> torch.Tensor:
        parts = []
        for bn in self.norms():
            parts += [bn.running_mean, bn.running_var]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)


def batched_setup(spec: NetSpec, S: int = 3, perturb: bool = True):
    """Params drawn by init_params, perturbed so BN affine params are not just 1 and 0.

    Everything runs in float64 (the forward is dtype-generic) so the comparison with torch.nn
    can use tight tolerances.
    """
    g = torch.Generator().manual_seed(123)
    flat = init_params(spec, [11 + s for s in range(S)], CPU).double()
    if perturb:
        flat = flat + 0.3 * torch.randn(flat.shape, generator=g)
    # running stats away from (0, 1) so eval mode really uses them
    stats = init_stats(spec, S, CPU).double()
    if spec.batchnorm:
        stats = stats + 0.2 * torch.rand(stats.shape, generator=g)
    x = torch.randn(S, N, spec.obs_dim, generator=g, dtype=torch.float64) * 2.0
    w = torch.randn(S, N, spec.n_actions, generator=g, dtype=torch.float64)  # loss weights
    return flat, stats, x, w


def references(spec: NetSpec, flat: torch.Tensor, stats: torch.Tensor, dueling: str | None):
    nets = []
    for s in range(flat.shape[0]):
        net = RefNet(spec.obs_dim, spec.hidden, spec.n_actions, spec.activation, spec.batchnorm,
                     dueling).double()
        net.load_row(flat[s].detach(), stats[s])
        nets.append(net)
    return nets


DUELING = [None, "mean", "max"]
ACTIVATIONS = ["relu", "leaky_relu", "tanh"]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dueling", DUELING)
@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize("train", [True, False])
def test_forward_and_gradients_match_torch_nn(batchnorm, dueling, activation, train):
    spec = make_spec(batchnorm, dueling, activation)
    flat, stats, x, w = batched_setup(spec)
    flat = flat.clone().requires_grad_()
    q, new_stats = q_values(spec, flat, stats, x, train=train)
    (grad,) = torch.autograd.grad((q * w).sum(), flat)

    nets = references(spec, flat, stats, dueling)
    for s, net in enumerate(nets):
        net.train(train)
        q_ref = net(x[s])
        (q_ref * w[s]).sum().backward()
        torch.testing.assert_close(q[s], q_ref)
        torch.testing.assert_close(grad[s], net.grad_row())
        # train mode: running stats move (momentum 0.1, unbiased var); eval: left as they were
        torch.testing.assert_close(new_stats[s], net.stats_row())
    if batchnorm and train:
        assert not torch.allclose(new_stats, stats)  # the update above was not a no-op


@pytest.mark.parametrize("dueling", DUELING)
def test_eval_mode_uses_running_stats_not_the_batch(dueling):
    """Eval output for one row does not depend on the other rows of the batch."""
    spec = make_spec(True, dueling)
    flat, stats, x, _ = batched_setup(spec)
    q_all, _ = q_values(spec, flat, stats, x, train=False)
    q_one, _ = q_values(spec, flat, stats, x[:, :1], train=False)
    torch.testing.assert_close(q_one[:, 0], q_all[:, 0])
    q_train, _ = q_values(spec, flat, stats, x, train=True)
    assert not torch.allclose(q_train, q_all)


@pytest.mark.parametrize("dueling", DUELING)
def test_running_stats_accumulate_like_batchnorm1d_over_several_steps(dueling):
    spec = make_spec(True, dueling)
    flat, stats, _, _ = batched_setup(spec, S=2)
    nets = references(spec, flat, stats, dueling)
    g = torch.Generator().manual_seed(5)
    for _ in range(4):
        x = torch.randn(2, N, OBS, generator=g, dtype=torch.float64) + 1.0
        _, stats = q_values(spec, flat, stats, x, train=True)
        for s, net in enumerate(nets):
            net.train()
            net(x[s])
            torch.testing.assert_close(stats[s], net.stats_row())


def test_unflatten_views_share_storage_with_the_flat_buffer():
    spec = make_spec(True, "mean")
    flat = init_params(spec, [0, 1], CPU)
    views = unflatten(spec, flat)
    assert views["fc0.weight"].shape == (2, OBS, HIDDEN[0])
    assert views["advantage.weight"].shape == (2, HIDDEN[-1], ACTIONS)
    assert views["value.bias"].shape == (2, 1)
    views["fc1.bias"][1, 2] = 42.0
    assert (flat == 42.0).sum() == 1
    n_expected = (OBS * 5 + 5) + (5 * 4 + 4) + (4 + 1) + (4 * 3 + 3) + 2 * (3 + 5 + 4)
    assert spec.n_params == n_expected == flat.shape[1]
    assert spec.n_stats == 2 * (3 + 5 + 4)


# initialisation ---------------------------------------------------------------------------

def _linear_params(spec: NetSpec, flat: torch.Tensor) -> dict[str, torch.Tensor]:
    return {k: v for k, v in unflatten(spec, flat).items() if not k.startswith("bn")}


@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize("dueling", DUELING)
def test_different_seeds_start_from_different_weights(batchnorm, dueling):
    spec = make_spec(batchnorm, dueling)
    flat = init_params(spec, [0, 1, 2], CPU)
    for name, p in _linear_params(spec, flat).items():
        for i in range(3):
            for j in range(i + 1, 3):
                assert not torch.equal(p[i], p[j]), name


@pytest.mark.parametrize("dueling", DUELING)
def test_same_seed_same_weights_whatever_the_batch(dueling):
    spec = make_spec(True, dueling)
    alone = init_params(spec, [7], CPU)
    torch.testing.assert_close(init_params(spec, [7], CPU), alone, rtol=0, atol=0)
    for seeds, pos in [([3, 7], 1), ([7, 3, 9], 0), ([1, 2, 3, 4, 7], 4)]:
        torch.testing.assert_close(init_params(spec, seeds, CPU)[pos], alone[0], rtol=0, atol=0)


def test_init_bounds_follow_nn_linear_default():
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases; BN weight 1, bias 0."""
    spec = NetSpec(4, 3, (256, 100), "relu", True, True, "mean")
    flat = init_params(spec, [0, 1], CPU)
    p = unflatten(spec, flat)
    fan_in = {"fc0": 4, "fc1": 256, "value": 100, "advantage": 100}
    for layer, fi in fan_in.items():
        bound = 1 / math.sqrt(fi)
        for kind in ("weight", "bias"):
            t = p[f"{layer}.{kind}"]
            assert t.abs().max() <= bound, (layer, kind)
            if t[0].numel() >= 100:  # enough draws to come close to both ends of the range
                assert t.max() > 0.9 * bound and t.min() < -0.9 * bound, (layer, kind)
                assert abs(t.mean()) < 0.1 * bound
    for i, n in enumerate((4, 256, 100)):
        assert torch.equal(p[f"bn{i}.weight"], torch.ones(2, n))
        assert torch.equal(p[f"bn{i}.bias"], torch.zeros(2, n))
    stats = init_stats(spec, 2, CPU)
    expected = torch.cat([torch.zeros(2, 4), torch.ones(2, 4), torch.zeros(2, 256),
                          torch.ones(2, 256), torch.zeros(2, 100), torch.ones(2, 100)], dim=1)
    assert torch.equal(stats, expected)


def test_fresh_init_matches_torch_nn_forward():
    """Unperturbed init (BN weight 1, bias 0, fresh running stats) through the reference too."""
    spec = make_spec(True, None)
    flat, stats, x, _ = batched_setup(spec, perturb=False)
    stats = init_stats(spec, 3, CPU).double()
    nets = references(spec, flat, stats, None)
    q, _ = q_values(spec, flat, stats, x, train=False)
    for s, net in enumerate(nets):
        net.eval()
        torch.testing.assert_close(q[s], net(x[s]))


@pytest.mark.parametrize("hidden", [(5,), (6, 4), (3, 5, 4)])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dueling", DUELING)
def test_explicit_mlp_backward_matches_torch_nn(dueling, activation, hidden):
    """The hand-written backward of networks without BatchNorm (the fast path) against
    torch.nn's autograd, for every head, activation and depth."""
    spec = NetSpec(3, 4, hidden, activation, False, dueling is not None, dueling or "mean")
    flat, _, x, w = batched_setup(spec)
    views = unflatten(spec, flat)
    tape: list = []
    q = mlp_forward(spec, views, x, tape)
    grad = torch.zeros_like(flat)
    mlp_backward(spec, views, tape, w, grad)
    assert tape == []
    for s, net in enumerate(references(spec, flat, init_stats(spec, 3, CPU).double(), dueling)):
        q_ref = net(x[s])
        (q_ref * w[s]).sum().backward()
        torch.testing.assert_close(q[s], q_ref)
        torch.testing.assert_close(grad[s], net.grad_row())
