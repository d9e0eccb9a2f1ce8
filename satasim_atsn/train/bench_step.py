"""Time one STBP training step of vgg_small: this numpy trainer, or the same network in PyTorch (CPU).

Not a project dependency: PyTorch is only imported with ``--torch``, from a scratch environment::

    python -m satasim_atsn.train.bench_step                       # numpy trainer
    /tmp/torchenv/bin/python -m satasim_atsn.train.bench_step --torch   # PyTorch CPU, same net, batch, T

Both run conv-tdBN-LIF x3 with spike max-pooling, the eq. 8 output and L_imp on random 28x28
inputs, and print the median seconds per step over ``--steps`` steps after ``--warmup``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np  # noqa: E402


def numpy_step_seconds(batch: int, timesteps: int, steps: int, warmup: int) -> float:
    """Median seconds per training step of the numpy trainer (forward, loss, backward, SGD)."""
    from satasim_atsn.train.config import SGD
    from satasim_atsn.train.losses import loss_and_grad
    from satasim_atsn.train.models import build_spec
    from satasim_atsn.train.network import Network

    spec = build_spec("vgg_small", [1, 28, 28], 10, "membrane")
    net = Network(spec, timesteps, seed=0)
    opt = SGD(net, 0.9, 5e-4)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        f = net.forward(x, training=True)
        _, grad = loss_and_grad(f, y, "imp", "membrane")
        opt.step(net.backward(grad), 0.01)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def torch_step_seconds(batch: int, timesteps: int, steps: int, warmup: int) -> float:  # pragma: no cover
    """Median seconds per step of the same network in PyTorch on the CPU."""
    import torch
    from torch import nn

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, u):
            ctx.save_for_backward(u)
            return (u > 1.0).float()

        @staticmethod
        def backward(ctx, g):
            (u,) = ctx.saved_tensors
            return g * torch.clamp(1.0 - (u - 1.0).abs(), min=0.0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = nn.ModuleList([nn.Conv2d(1, 16, 3, padding=1, bias=False),
                                        nn.Conv2d(16, 32, 3, padding=1, bias=False),
                                        nn.Conv2d(32, 64, 3, padding=1, bias=False)])
            self.bns = nn.ModuleList([nn.BatchNorm2d(c) for c in (16, 32, 64)])
            self.out = nn.Linear(64 * 3 * 3, 10)

        def lif(self, cur):  # cur [T, B, C, H, W]
            u = torch.zeros_like(cur[0])
            s = torch.zeros_like(cur[0])
            spikes = []
            for t in range(cur.shape[0]):
                u = 0.5 * u * (1 - s) + cur[t]
                s = Spike.apply(u)
                spikes.append(s)
            return torch.stack(spikes)

        def forward(self, x):
            T = timesteps
            cur = self.bns[0](self.convs[0](x))  # static image: once
            s = self.lif(cur.unsqueeze(0).expand(T, *cur.shape))
            for i in (1, 2):
                s = nn.functional.max_pool2d(s.flatten(0, 1), 2)
                cur = self.bns[i](self.convs[i](s))
                s = self.lif(cur.view(T, -1, *cur.shape[1:]))
            s = nn.functional.max_pool2d(s.flatten(0, 1), 2).flatten(1)
            o = self.out(s).view(T, -1, 10)
            u = torch.zeros_like(o[0])
            outs = []
            for t in range(T):
                u = 0.5 * u + o[t]
                outs.append(u)
            return torch.stack(outs)

    torch.manual_seed(0)
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    t_idx = torch.arange(1, timesteps + 1, dtype=torch.float32)
    w = 1 + torch.exp(-1 - (t_idx + 1) / timesteps)
    w = w / w.sum()
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        f = net(x)
        loss = sum(w[t] * nn.functional.cross_entropy(f[t], y) for t in range(timesteps))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: print the median step time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch", action="store_true", help="time the PyTorch version instead")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--timesteps", type=int, default=4)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)
    for option, value, least in (("--batch", args.batch, 1), ("--timesteps", args.timesteps, 1),
                                 ("--steps", args.steps, 1), ("--warmup", args.warmup, 0)):
        if value < least:  # a traceback otherwise (an empty median, a reshape of 0, a division by 0)
            parser.exit(2, f"bench_step: error: {option}: must be at least {least}, got {value}; fix the value\n")
    if args.torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            parser.exit(2, "bench_step: error: --torch: PyTorch is not installed in this environment; run it with "
                        "the python of a scratch environment that has torch (see this module's docstring)\n")
    fn = torch_step_seconds if args.torch else numpy_step_seconds
    seconds = fn(args.batch, args.timesteps, args.steps, args.warmup)
    name = "pytorch" if args.torch else "numpy"
    print(f"{name} vgg_small step: batch {args.batch}, T {args.timesteps}: {seconds:.4f} s median over {args.steps}")


if __name__ == "__main__":
    main()
