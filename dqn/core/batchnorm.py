"""The BatchNorm Q-network's training pass written out by hand: forward with batch statistics,
then the gradient of every parameter, batched over seeds, without autograd.

autograd spends most of a BatchNorm update on bookkeeping and on torch's variance kernel over
the batch dimension (about 1.8 ms for (32, 128, 32) on one core, against 10 us for the mean);
here the variance is the mean of squared deviations and the backward pass is the closed form.
Per BatchNorm over the N rows of each seed (x (S, N, F), weight w, bias b (S, F)):

    mean = sum_n x / N                    var = sum_n (x - mean)^2 / N   (biased, as torch)
    rstd = 1 / sqrt(var + eps)            xhat = (x - mean) rstd         y = xhat w + b
    dw = sum_n dy xhat                    db = sum_n dy
    dx = rstd (dxhat - mean_n(dxhat) - xhat mean_n(dxhat xhat)),  dxhat = dy w

Same maths as torch.nn.BatchNorm1d in training mode (tests/test_batchnorm.py checks values and
gradients against it and autograd), other rounding: a run with batchnorm_backward = "manual"
is not bit-identical to one with "autograd".
"""

from __future__ import annotations

import torch

from dqn.core.networks import (
    BN_EPS,
    BN_MOMENTUM,
    NetSpec,
    _activation,
    _activation_backward,
    head,
    head_backward,
    head_forward,
)


def bn_train(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, mean: torch.Tensor,
             var: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor],
                                         torch.Tensor, torch.Tensor]:
    """BatchNorm of x (S, N, F) with its batch statistics: (y, (xhat, rstd) for the backward
    pass, new running mean, new running var (S, F)), momentum 0.1 and the unbiased variance
    in the running estimate, as torch.nn.BatchNorm1d keeps them."""
    n = x.shape[1]
    batch_mean = x.mean(dim=1)  # (S, F)
    centred = x - batch_mean[:, None]  # (S, N, F)
    batch_var = (centred * centred).mean(dim=1)  # (S, F)
    rstd = torch.rsqrt(batch_var + BN_EPS)  # (S, F)
    xhat = centred * rstd[:, None]  # (S, N, F)
    y = torch.addcmul(bias[:, None], xhat, weight[:, None])  # (S, N, F)
    new_mean = (1 - BN_MOMENTUM) * mean + BN_MOMENTUM * batch_mean
    new_var = (1 - BN_MOMENTUM) * var + BN_MOMENTUM * batch_var * n / max(n - 1, 1)
    return y, (xhat, rstd), new_mean, new_var


def bn_backward(dy: torch.Tensor, saved: tuple[torch.Tensor, torch.Tensor],
                weight: torch.Tensor, need_input: bool = True
                ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """(dx (S, N, F) or None, dweight (S, F), dbias (S, F)) of y = bn_train(x) given dy."""
    xhat, rstd = saved
    dweight = (dy * xhat).sum(dim=1)  # (S, F)
    dbias = dy.sum(dim=1)  # (S, F)
    if not need_input:
        return None, dweight, dbias
    n = dy.shape[1]
    # dxhat = dy w; mean_n(dxhat) = db w / N; mean_n(dxhat xhat) = dw w / N, so
    # dx = scale dy - scale db / N - xhat scale dw / N with scale = w rstd: two fused passes
    scale = weight * rstd  # (S, F)
    dx = torch.addcmul((-scale * dbias / n)[:, None], dy, scale[:, None])  # (S, N, F)
    return dx.addcmul_(xhat, (-scale * dweight / n)[:, None]), dweight, dbias


def bn_forward_train(spec: NetSpec, p: dict[str, torch.Tensor], stats: torch.Tensor,
                     x: torch.Tensor, tape: list) -> tuple[torch.Tensor, torch.Tensor]:
    """Q-values (S, N, A) in training mode (batch statistics) and the new running stats
    (S, n_stats), keeping on `tape` what bn_network_backward needs. Same layout as
    networks.q_values: BatchNorm on the input and after each hidden linear layer."""
    sizes, pos, new_stats = spec.bn_sizes(), 0, []

    def bn(h: torch.Tensor, i: int) -> tuple[torch.Tensor, tuple]:
        nonlocal pos
        n = sizes[i]
        y, saved, m, v = bn_train(h, p[f"bn{i}.weight"], p[f"bn{i}.bias"],
                                  stats[:, pos:pos + n], stats[:, pos + n:pos + 2 * n])
        pos += 2 * n
        new_stats.extend([m, v])
        return y, saved

    h, saved = bn(x, 0)
    tape.append(saved)
    for i in range(len(spec.hidden)):
        z = torch.baddbmm(p[f"fc{i}.bias"].unsqueeze(1), h, p[f"fc{i}.weight"])  # (S, N, H_i)
        u, saved = bn(z, i + 1)
        out = _activation(u, spec.activation)
        tape.append((h, saved, u, out))
        h = out
    return head_forward(spec, h, head(spec, p), tape), torch.cat(new_stats, dim=1)


def bn_network_backward(spec: NetSpec, p: dict[str, torch.Tensor], tape: list,
                        dq: torch.Tensor, grad: torch.Tensor) -> None:
    """Write into `grad` (S, P) the gradient of sum(dq * q) for the q bn_forward_train taped:
    the head as networks.mlp_backward takes it, then per hidden layer the activation, the
    BatchNorm (bn_backward) and the linear layer, down to the input BatchNorm's weight and
    bias (the input itself needs no gradient)."""
    pieces: dict[str, torch.Tensor] = {}
    dh = head_backward(spec, p, tape, dq, pieces)  # (S, N, H)
    for i in reversed(range(len(spec.hidden))):
        h_in, saved, u, out = tape.pop()
        du = _activation_backward(dh, u, out, spec.activation)  # (S, N, H_i)
        dz, pieces[f"bn{i + 1}.weight"], pieces[f"bn{i + 1}.bias"] = bn_backward(
            du, saved, p[f"bn{i + 1}.weight"])
        pieces[f"fc{i}.weight"] = torch.bmm(h_in.transpose(1, 2), dz)  # (S, in, out)
        pieces[f"fc{i}.bias"] = dz.sum(dim=1)
        dh = torch.bmm(dz, p[f"fc{i}.weight"].transpose(1, 2))  # (S, N, in)
    _, pieces["bn0.weight"], pieces["bn0.bias"] = bn_backward(dh, tape.pop(), p["bn0.weight"],
                                                              need_input=False)
    S = grad.shape[0]
    torch.cat([pieces[name].reshape(S, -1) for name in spec.offsets], dim=1, out=grad)
