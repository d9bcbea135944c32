"""Seed-batched Q-networks.

All S seeds' parameters live in one flat tensor of shape (S, P): every layer's weight is a view
(S, in, out) into it, so the optimizer, gradient clipping, target copies and Polyak updates are
each one elementwise op over (S, P) and never mix seeds. The forward pass is a pure function of
(params, batchnorm running stats, input), so the online and target networks share one code path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dqn.core import c51
from dqn.core.netspec import NetSpec, unflatten

BN_EPS = 1e-5
BN_MOMENTUM = 0.1  # torch.nn.BatchNorm1d defaults, so the classic notebook's net is matched


def _activation(x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "relu":
        return F.relu(x)
    if kind == "leaky_relu":
        return F.leaky_relu(x, 0.01)
    return torch.tanh(x)


def _batchnorm(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
    mean: torch.Tensor, var: torch.Tensor, train: bool, fused: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """BatchNorm1d over dim 1 of (S, N, F), statistics per seed; returns (y, new mean, new var).
    fused: eval mode in one pass (batchnorm_backward = "manual": same maths, other rounding)."""
    if train:
        batch_mean = x.mean(dim=1)  # (S, F)
        batch_var = x.var(dim=1, unbiased=False)  # (S, F)
        n = x.shape[1]
        # running variance uses the unbiased estimate, as torch.nn.BatchNorm1d does
        new_mean = (1 - BN_MOMENTUM) * mean + BN_MOMENTUM * batch_mean.detach()
        new_var = (1 - BN_MOMENTUM) * var + BN_MOMENTUM * batch_var.detach() * n / max(n - 1, 1)
        mean_used, var_used = batch_mean, batch_var
    elif fused:  # eval mode as one affine pass, y = x a + (b - mean a), a = w / sqrt(var + eps)
        scale = weight * torch.rsqrt(var + BN_EPS)  # (S, F)
        return torch.addcmul((bias - mean * scale)[:, None], x, scale[:, None]), mean, var
    else:
        new_mean, new_var = mean, var
        mean_used, var_used = mean, var
    y = (x - mean_used[:, None]) * torch.rsqrt(var_used[:, None] + BN_EPS)
    return y * weight[:, None] + bias[:, None], new_mean, new_var


def q_values(
    spec: NetSpec, params: torch.Tensor | dict[str, torch.Tensor], stats: torch.Tensor,
    x: torch.Tensor, train: bool = False, fused: bool = False, raw: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Q-values (S, N, A) for observations x (S, N, obs_dim).

    `params` is the flat (S, P) buffer or its `unflatten` views. `train` selects batch
    statistics (and returns updated running stats) versus running statistics (eval mode, used
    for acting and for targets). Returns (q, new_stats). fused: eval mode's BatchNorm in one
    affine pass (batchnorm_backward = "manual"). A C51 network's Q is its distributions'
    mean; raw: its logits (S, N, A, K) instead.
    """
    p = unflatten(spec, params) if isinstance(params, torch.Tensor) else params
    S = x.shape[0]
    bn_means, bn_vars, pos = [], [], 0
    for n in spec.bn_sizes():
        bn_means.append(stats[:, pos:pos + n])
        bn_vars.append(stats[:, pos + n:pos + 2 * n])
        pos += 2 * n
    new_stats: list[torch.Tensor] = []

    def bn(h: torch.Tensor, i: int) -> torch.Tensor:
        y, m, v = _batchnorm(h, p[f"bn{i}.weight"], p[f"bn{i}.bias"], bn_means[i], bn_vars[i],
                             train, fused)
        new_stats.extend([m, v])
        return y

    h = bn(x, 0) if spec.batchnorm else x
    for i in range(len(spec.hidden)):
        h = torch.baddbmm(p[f"fc{i}.bias"].unsqueeze(1), h, p[f"fc{i}.weight"])  # (S, N, H_i)
        if spec.batchnorm:
            h = bn(h, i + 1)
        h = _activation(h, spec.activation)
    # the head as one matmul of width 1 + A (or A), as mlp_forward does: a batched matmul
    # of output width 1 (the value alone) rounds differently for S = 1 than in a batch
    q = head_forward(spec, h, head(spec, p))  # (S, N, A), or C51's logits (S, N, A, K)
    if spec.atoms > 1 and not raw:
        q = c51.mean(q, c51.support(spec.atoms, spec.v_min, spec.v_max, x.device))
    stats_out = torch.cat(new_stats, dim=1) if new_stats else stats.reshape(S, 0)
    return q, stats_out


# Without BatchNorm the network is a plain MLP, whose gradients take a few batched matmuls
# written out below: faster than autograd's bookkeeping for these small layers, and checked
# against autograd for every architecture knob in tests/test_networks.py.
Tape = list[tuple[torch.Tensor, ...]]
NARROW = 16  # output widths below this go through _narrow (measured: 3-5x faster)


def head(spec: NetSpec, p: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The output layer as one (S, M, H) weight, transposed and contiguous, and its (S, M)
    bias: value and advantage side by side for a dueling head (M = 1 + A), else (M = A)."""
    names = ("value", "advantage") if spec.dueling else ("out",)
    weight = torch.cat([p[f"{n}.weight"].transpose(1, 2) for n in names], dim=1)  # (S, M, H)
    bias = torch.cat([p[f"{n}.bias"] for n in names], dim=1)  # (S, M)
    return weight, bias


def _narrow(h: torch.Tensor, weight_t: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """h W + b (S, N, M) for a narrow output M, from W^T (S, M, H). BLAS is several times
    faster writing (S, M, N) than (S, N, M) when M is a handful and N is a batch."""
    if h.shape[1] == 1:  # acting: one observation per seed
        return torch.baddbmm(bias.unsqueeze(1), h, weight_t.transpose(1, 2))
    return torch.baddbmm(bias.unsqueeze(2), weight_t, h.transpose(1, 2)).transpose(1, 2)


def mlp_forward(spec: NetSpec, p: dict[str, torch.Tensor], x: torch.Tensor,
                tape: Tape | None = None,
                out_layer: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Q-values (S, N, A) of a network without BatchNorm for x (S, N, obs_dim), from the
    per-layer views `p`. With a `tape`, each layer's input and pre-activation are kept for
    mlp_backward (then the head's input and weight, and the max aggregation's choice).
    out_layer: head(spec, p), when the caller keeps it between calls."""
    h = x
    for i in range(len(spec.hidden)):
        z = torch.baddbmm(p[f"fc{i}.bias"].unsqueeze(1), h, p[f"fc{i}.weight"])  # (S, N, H_i)
        out = _activation(z, spec.activation)
        if tape is not None:
            tape.append((h, z, out))
        h = out
    return head_forward(spec, h, out_layer if out_layer is not None else head(spec, p), tape)


def head_forward(spec: NetSpec, h: torch.Tensor, out_layer: tuple[torch.Tensor, torch.Tensor],
                 tape: Tape | None = None) -> torch.Tensor:
    """Q-values (S, N, A) from the last hidden layer h (S, N, H) and head(spec, p); with a
    tape, what head_backward needs (the head's input and weight, the max's choice)."""
    weight_t, bias = out_layer
    out = _narrow(h, weight_t, bias)  # (S, N, M)
    if tape is not None:
        tape.append((h, weight_t))
    dim = -1  # the action dimension
    if spec.atoms > 1:  # C51: the logits (S, N, M / K, K) of each output's K atoms
        out, dim = out.unflatten(-1, (-1, spec.atoms)), -2
    if not spec.dueling:
        return out
    # (S, N, 1), (S, N, A), or (S, N, 1, K), (S, N, A, K): C51 centres each atom's logits
    value, adv = out.narrow(dim, 0, 1), out.narrow(dim, 1, spec.n_actions)
    if spec.dueling_aggregation == "mean":
        return value + adv - adv.mean(dim=dim, keepdim=True)
    centre, best = adv.max(dim=dim, keepdim=True)
    if tape is not None:
        tape.append((best, best))
    return value + adv - centre


def _activation_backward(dh: torch.Tensor, z: torch.Tensor, out: torch.Tensor,
                         kind: str) -> torch.Tensor:
    """dz = dh * act'(z), by the kernels autograd itself runs for these activations (relu:
    dh where z > 0, else 0; leaky relu: 0.01 dh where z <= 0; tanh: dh (1 - out^2))."""
    if kind == "relu":
        return torch.ops.aten.threshold_backward(dh, z, 0.0)
    if kind == "leaky_relu":
        return torch.ops.aten.leaky_relu_backward(dh, z, 0.01, False)
    return torch.ops.aten.tanh_backward(dh, out)


def head_backward(spec: NetSpec, p: dict[str, torch.Tensor], tape: Tape, dq: torch.Tensor,
                  pieces: dict[str, torch.Tensor]) -> torch.Tensor:
    """The output layer's part of mlp_backward (and of the BatchNorm net's): its weight and
    bias gradients into `pieces`, from the taped head input and weight (and the max
    aggregation's choice); returns dh (S, N, H), the gradient into the last hidden layer."""
    if spec.dueling:
        best = tape.pop()[0] if spec.dueling_aggregation == "max" else None  # (S, N, 1)
        total = dq.sum(dim=-1, keepdim=True)  # (S, N, 1)
        # q = v + a - centre(a): dv = sum_a dq; da = dq - d centre
        dadv = dq - total / dq.shape[-1] if best is None else dq.scatter_add(-1, best, -total)
        dout = torch.cat([total, dadv], dim=-1)  # (S, N, 1 + A)
    else:
        dout = dq  # (S, N, A)
    h, weight_t = tape.pop()
    dweight_t = torch.bmm(dout.transpose(1, 2), h)  # (S, M, H): dW^T, the fast layout
    dbias = dout.sum(dim=1)  # (S, M)
    start = 0
    for n in ("value", "advantage") if spec.dueling else ("out",):
        width = p[f"{n}.bias"].shape[1]
        pieces[f"{n}.weight"] = dweight_t[:, start:start + width].transpose(1, 2)
        pieces[f"{n}.bias"] = dbias[:, start:start + width]
        start += width
    return torch.bmm(dout, weight_t)  # (S, N, H)


def mlp_backward(spec: NetSpec, p: dict[str, torch.Tensor], tape: Tape, dq: torch.Tensor,
                 grad: torch.Tensor) -> None:
    """Write into `grad` (S, P) the gradient of sum(dq * q) with respect to every parameter, q
    being the mlp_forward that filled `tape`. Per layer y = h W + b: dW = h^T dy, db = sum over
    N of dy, dh = dy W^T; through the activation dz = dh act'(z). Each piece is computed into
    a tensor of its own and the (S, P) rows are assembled by one cat: a matmul writing
    straight into a strided view of the rows falls back to one small matmul per seed."""
    pieces: dict[str, torch.Tensor] = {}
    dh = head_backward(spec, p, tape, dq, pieces)  # (S, N, H)
    for i in reversed(range(len(spec.hidden))):
        h_in, z, out = tape.pop()
        dz = _activation_backward(dh, z, out, spec.activation)  # (S, N, H_i)
        pieces[f"fc{i}.weight"] = torch.bmm(h_in.transpose(1, 2), dz)  # (S, in, out)
        pieces[f"fc{i}.bias"] = dz.sum(dim=1)  # (S, out)
        if i:
            dh = torch.bmm(dz, p[f"fc{i}.weight"].transpose(1, 2))
    S = grad.shape[0]
    torch.cat([pieces[name].reshape(S, -1) for name in spec.offsets], dim=1, out=grad)
