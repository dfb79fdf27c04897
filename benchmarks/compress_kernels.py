"""Latency of one Linear layer under each compression method, relative to float32 (CPU).

    PYTHONPATH=. python benchmarks/compress_kernels.py --threads 1

A ratio benchmark, not a unit test: it checks that what `kernel: real` claims (fewer operations
or lower precision actually executed) shows up as time, and that `simulated` methods cost the
same as float32. Warm-up, then timed repeats; numbers depend on the CPU (AVX512/AMX, threads).
"""
from __future__ import annotations

import argparse
import time

import torch

from asr_compress.compress import compress_, make_config

METHODS = [
    ("none", {}),
    ("int8_dynamic", {}),
    ("fp16", {}),
    ("bf16", {}),
    ("int8_weight", {}),
    ("int8_weight", {"group_size": -1, "int8pack_kernel": True}),
    ("int4_weight", {}),
    ("prune_unstructured", {"sparsity": 0.5}),
    ("lowrank", {"rank": 64}),
]


def bench(fn, repeats: int) -> float:
    for _ in range(max(3, repeats // 10)):  # warm-up
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)  # 1: the shared-CPU decoding setting
    parser.add_argument("--in-features", type=int, default=512)  # a typical ESPnet attention width
    parser.add_argument("--out-features", type=int, default=2048)  # its feed-forward width
    parser.add_argument("--rows", type=int, default=10)  # beam size x one decoding step
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.randn(args.rows, args.in_features)
    base = None
    print(f"| method | params | us/call | vs float32 | kernel |  ({torch.__version__}, {torch.backends.cpu.get_cpu_capability()}, {args.threads} thread(s))")
    print("|---|---|---|---|---|")
    for name, params in METHODS:
        torch.manual_seed(0)
        holder = torch.nn.Sequential(torch.nn.Linear(args.in_features, args.out_features)).eval()
        report = compress_(holder, make_config(name, **params), component="module")
        with torch.no_grad():
            seconds = bench(lambda: holder(x), args.repeats)
        base = base or seconds
        label = ", ".join(f"{k}={v}" for k, v in params.items())
        print(f"| {name} | {label} | {seconds * 1e6:.1f} | {seconds / base:.2f} | {report.kernel} |")


if __name__ == "__main__":
    main()
