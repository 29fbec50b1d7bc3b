#!/usr/bin/env python3
"""The same UNet16 training step as bench/bench_train_step.cpp, in PyTorch, for the speed ratio.

UNet16: in 3, out 1, depth 4, base 16 (16, 32, 64, 128, 256 channels), two 3x3 convolutions with
ReLU per level, 2x2 max-pooling, 2x2 stride-2 transposed convolutions, concat [up, skip], 1x1 head:
1,941,105 parameters (checked below). Step: forward, BCEWithLogits, backward, Adam (lr 1e-3).

Usage:
  python3 bench/pytorch_train_step.py [--batch 16] [--size 128] [--steps 10] [--threads 1 2]
                                      [--channels-last]
Prints one line per thread count and mode:
  pytorch train threads=1 batch=16 size=128 channels_last=0 ms_per_step=... images_per_s=...
  pytorch infer threads=1 batch=16 size=128 channels_last=0 ms_per_batch=... images_per_s=...
Needs torch (Debian: apt-get install python3-torch); exits with status 2 and a message otherwise.
"""
import argparse
import sys
import time

try:
    import torch
    import torch.nn as nn
except ImportError:
    print("pytorch_train_step.py: PyTorch is not installed (Debian: apt-get install "
          "python3-torch; pip: pip install torch); nothing to compare against", file=sys.stderr)
    sys.exit(2)


def block(c, k):
    return nn.Sequential(nn.Conv2d(c, k, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(k, k, 3, padding=1), nn.ReLU(inplace=True))


class UNet16(nn.Module):
    def __init__(self, in_channels=3, out_channels=1, depth=4, base=16):
        super().__init__()
        widths = [base << level for level in range(depth + 1)]
        self.enc = nn.ModuleList()
        c = in_channels
        for w in widths[:depth]:
            self.enc.append(block(c, w))
            c = w
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = block(widths[depth - 1], widths[depth])
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for level in reversed(range(depth)):
            self.up.append(nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2))
            self.dec.append(block(2 * widths[level], widths[level]))
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, x):
        skips = []
        for enc in self.enc:
            x = enc(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.head(x)


def timed(fn, steps):
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--channels-last", action="store_true",
                        help="use torch.channels_last memory format (often faster on CPU)")
    args = parser.parse_args()

    torch.manual_seed(0)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = UNet16().to(memory_format=fmt)
    count = sum(p.numel() for p in model.parameters())
    if count != 1941105:
        print(f"pytorch_train_step.py: UNet16 has {count} parameters, expected 1941105",
              file=sys.stderr)
        sys.exit(1)
    x = torch.rand(args.batch, 3, args.size, args.size).to(memory_format=fmt)
    target = (torch.rand(args.batch, 1, args.size, args.size) < 0.3).float()
    loss_fn = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), target)
        loss.backward()
        optimizer.step()

    def infer():
        with torch.no_grad():
            model(x)

    for threads in args.threads:
        torch.set_num_threads(threads)
        cl = int(args.channels_last)
        common = f"threads={threads} batch={args.batch} size={args.size} channels_last={cl}"
        model.train()
        t = timed(train_step, args.steps)
        print(f"pytorch train {common} ms_per_step={t * 1e3:.1f} "
              f"images_per_s={args.batch / t:.2f}", flush=True)
        model.eval()
        t = timed(infer, args.steps)
        print(f"pytorch infer {common} ms_per_batch={t * 1e3:.1f} "
              f"images_per_s={args.batch / t:.2f}", flush=True)


if __name__ == "__main__":
    main()
