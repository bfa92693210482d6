#!/usr/bin/env python3
"""W1 in PyTorch eager, the peer of `dotnet run -c Release --project bench/SnnFunc.Bench -- w1`.

The workload of shared/reference/workloads.md ("W1"), written the way PyTorch users write it
(SpyTorch/snnTorch style): a Python loop over time steps, an autograd.Function for the SuperSpike
surrogate, the input currents of all steps from one matmul, Adam.

    python3 torch_w1.py bench [--reps N]   prints samples_per_s=<n> loss=<l> (median of N >= 10
                                           timed steps after 3 warm-up steps, 2 threads)
    python3 torch_w1.py check <dir>        reads x.npy [T;B;NI], labels.npy [B], w1.npy [NI;NH],
                                           w2.npy [NH;NO]; writes loss.npy, g1.npy, g2.npy (the loss
                                           and its gradients, in the dtype of x)
"""
import sys
import time

import numpy as np
import torch

B, T, NI, NH, NO = 64, 100, 256, 246, 10
DT, TAU_SYN, TAU_MEM, THRESHOLD = 1e-3, 5e-3, 10e-3, 1.0
ALPHA = DT / TAU_MEM          # membrane: v <- v + dt/tauMem (-v + i)
BETA = 1.0 - DT / TAU_SYN     # synapse:  i <- i (1 - dt/tauSyn) + input


class SuperSpike(torch.autograd.Function):
    """Heaviside forward (0 at exactly 0); SuperSpike surrogate 1 / (100 |x| + 1)^2 backward."""

    scale = 100.0

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output / (SuperSpike.scale * x.abs() + 1.0) ** 2


spike = SuperSpike.apply


def run_network(x, w1, w2):
    """Readout maxima m [B; NO] and the hidden spike count for time-major input spikes x [T; B; NI]."""
    steps, batch, _ = x.shape
    h1 = torch.einsum("tbi,ih->tbh", x, w1)  # input currents of all steps, one matmul
    v = torch.zeros(batch, NH, dtype=x.dtype)
    i = torch.zeros(batch, NH, dtype=x.dtype)
    vo = torch.zeros(batch, NO, dtype=x.dtype)
    io = torch.zeros(batch, NO, dtype=x.dtype)
    trace = []
    spikes = 0.0
    for t in range(steps):
        v = v + ALPHA * (-v + i)          # uses the synaptic current before this step's input
        i = i * BETA + h1[t]
        z = spike(v - THRESHOLD)
        v = v * (1.0 - z.detach())        # reset to 0; the reset carries no gradient
        vo = vo + ALPHA * (-vo + io)
        io = io * BETA + z @ w2
        trace.append(vo)
        spikes += float(z.detach().sum())
    # m = max over time of vo (W1's running m <- max(m, vo) from -1e9). The readout sits at exactly 0
    # until the first hidden spike reaches it, so maxima are often ties; torch.amax shares a tie's
    # gradient evenly, as SnnFunc's max reduction does. (A running torch.maximum splits ties 1/2,
    # 1/4, ... and torch.max(dim) gives all to the first step: other valid subgradients, which
    # would make the gradients incomparable.)
    m = torch.amax(torch.stack(trace), dim=0)
    return m, spikes


def loss_fn(x, labels, w1, w2):
    m, spikes = run_network(x, w1, w2)
    return torch.nn.functional.cross_entropy(m, labels), spikes


def make_input(rng):
    """Every input neuron of every sample fires once, at a uniformly random step in [0, T)."""
    x = np.zeros((T, B, NI), dtype=np.float32)
    when = rng.integers(0, T, size=(B, NI))
    x[when, np.arange(B)[:, None], np.arange(NI)[None, :]] = 1.0
    return torch.from_numpy(x), torch.from_numpy(rng.integers(0, NO, size=B)).long()


def bench(reps):
    torch.set_num_threads(2)
    torch.manual_seed(2)
    x, labels = make_input(np.random.default_rng(1))
    w1 = (torch.randn(NI, NH) * 4.0 / NI ** 0.5).requires_grad_()
    w2 = (torch.randn(NH, NO) * 4.0 / NH ** 0.5).requires_grad_()
    opt = torch.optim.Adam([w1, w2], lr=1e-3)
    with torch.no_grad():
        initial, spikes = loss_fn(x, labels, w1, w2)

    def train_step():
        opt.zero_grad()
        loss, _ = loss_fn(x, labels, w1, w2)
        loss.backward()
        opt.step()
        return float(loss)

    for _ in range(3):
        train_step()
    times, loss = [], float("nan")
    for _ in range(reps):
        start = time.perf_counter()
        loss = train_step()
        times.append(time.perf_counter() - start)
    median = float(np.median(times))
    print(
        f"torch_w1 threads={torch.get_num_threads()} torch={torch.__version__} "
        f"samples_per_s={B / median:.1f} median_ms={median * 1e3:.2f} initial_loss={float(initial):.4f} "
        f"loss={loss:.4f} hidden_spikes_per_sample={spikes / B:.1f}"
    )


def check(folder):
    torch.set_num_threads(2)
    x = torch.from_numpy(np.load(f"{folder}/x.npy"))
    dtype = x.dtype
    labels = torch.from_numpy(np.load(f"{folder}/labels.npy").astype(np.int64))
    w1 = torch.from_numpy(np.load(f"{folder}/w1.npy")).to(dtype).requires_grad_()
    w2 = torch.from_numpy(np.load(f"{folder}/w2.npy")).to(dtype).requires_grad_()
    loss, spikes = loss_fn(x, labels, w1, w2)
    loss.backward()
    np.save(f"{folder}/loss.npy", loss.detach().numpy())
    np.save(f"{folder}/g1.npy", w1.grad.numpy())
    np.save(f"{folder}/g2.npy", w2.grad.numpy())
    print(f"torch_w1 check loss={float(loss):.6f} hidden_spikes_per_sample={spikes / x.shape[1]:.1f}")


def main(argv):
    if len(argv) >= 2 and argv[1] == "bench":
        reps = int(argv[argv.index("--reps") + 1]) if "--reps" in argv else 15
        bench(max(10, reps))
    elif len(argv) == 3 and argv[1] == "check":
        check(argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
