#!/usr/bin/env python3
"""conv2d in PyTorch eager, the peer of `dotnet run -c Release --project bench/SnnFunc.Bench -- conv`.

Same shapes (batch 64; 1 -> 16 channels on 28 x 28 and 16 -> 32 on 14 x 14; 3 x 3 and 5 x 5
kernels, padding k // 2, stride 1, bias; float32), same timing (median of N timed calls after 10
warm-up calls, 2 threads unless --threads says otherwise), same line format: the forward pass, and forward + backward (the gradients
with respect to input and weights for a fixed output cotangent).

    python3 torch_conv.py [--reps N] [--threads T] [--clock wall|cpu]

--clock cpu times by the process's CPU time (with one thread: the time on its core, without the
time slices other processes took on a shared machine).
"""
import sys
import time

import torch
import torch.nn.functional as F

SHAPES = [(1, 16, 28, 3), (1, 16, 28, 5), (16, 32, 14, 3), (16, 32, 14, 5)]
BATCH = 64


def median(f, warmup, reps, clock=time.perf_counter):
    for _ in range(warmup):
        f()
    times = []
    for _ in range(reps):
        t = clock()
        f()
        times.append(clock() - t)
    times.sort()
    return times[reps // 2]


def main():
    reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 31
    threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
    clock_name = sys.argv[sys.argv.index("--clock") + 1] if "--clock" in sys.argv else "wall"
    clock = {"wall": time.perf_counter, "cpu": time.process_time}[clock_name]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    for cin, cout, hw, k in SHAPES:
        x = torch.randn(BATCH, cin, hw, hw)
        w = torch.randn(cout, cin, k, k) / (cin * k * k) ** 0.5
        b = torch.randn(cout)
        ct = torch.randn(BATCH, cout, hw, hw)
        xg = x.clone().requires_grad_(True)
        wg = w.clone().requires_grad_(True)

        def forward():
            with torch.no_grad():
                F.conv2d(x, w, b, padding=k // 2)

        def forward_backward():
            y = F.conv2d(xg, wg, b, padding=k // 2)
            gx, gw = torch.autograd.grad(y, (xg, wg), ct)

        fwd = median(forward, 10, reps, clock)
        fwdbwd = median(forward_backward, 10, reps, clock)
        flops = 2.0 * BATCH * cout * hw * hw * cin * k * k
        print(
            f"conv n={BATCH} cin={cin} cout={cout} hw={hw} k={k} fwd_ms={fwd * 1e3:.3f} "
            f"fwdbwd_ms={fwdbwd * 1e3:.3f} fwd_gflops={flops / fwd / 1e9:.1f}"
        )


if __name__ == "__main__":
    main()
