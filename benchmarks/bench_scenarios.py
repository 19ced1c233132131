"""Benchmark scenario generation at demo size (4,000 reference + 2,000 shifted Fashion-MNIST PNGs).

Prints, for each scenario, the time to write the ImageFolder pair into a fresh folder and the time of a rerun
(which reuses the finished folder), next to a naive baseline measured in the same run: the same tint-bias images
made one at a time (PIL grey → RGB conversion, per-image float tint, PNG at PIL's default compression), and
ptdiag itself with a single write thread. Times are the best of ``--repeats`` runs (the machine is shared).

    .venv/bin/python benchmarks/bench_scenarios.py [--n-reference 4000] [--n-shift 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ptdiag import scenarios
from ptdiag.datasets import load_fashion_mnist
from ptdiag.scenarios import class_palette, get_scenario, list_scenarios


def naive_tint_bias(out: Path, n_reference: int, n_shift: int, p: float = 0.5, seed: int = 0) -> None:
    """The obvious per-image loop, for comparison only."""
    rng = np.random.default_rng(seed)
    palette = class_palette(10)
    for side, split, n in (("reference", "train", n_reference), ("shift", "test", n_shift)):
        images, labels, _ = load_fashion_mnist(split)
        for i in rng.choice(len(images), size=n, replace=False):
            own = side == "reference" and rng.random() < p
            colour = palette[labels[i] if own else rng.integers(10)]
            rgb = np.asarray(Image.fromarray(images[i]).convert("RGB"), dtype=np.float64) / 255
            tinted = Image.fromarray(np.rint(255 * (0.75 * rgb + 0.25 * colour)).astype(np.uint8))
            folder = out / side / str(labels[i])
            folder.mkdir(parents=True, exist_ok=True)
            tinted.save(folder / f"{i:05d}.png")


def best_of(repeats: int, fn) -> float:
    """Fastest of ``repeats`` runs: the machine is shared, so the minimum is the least noisy estimate."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-reference", type=int, default=4000)
    parser.add_argument("--n-shift", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = {"n_reference": args.n_reference, "n_shift": args.n_shift}
    fresh = iter(range(10**6))

    with tempfile.TemporaryDirectory() as tmp:
        root, cache = Path(tmp), Path(tmp) / "cache"
        cold = best_of(1, lambda: load_fashion_mnist("train", cache) and load_fashion_mnist("test", cache))
        print(f"Fashion-MNIST first load (gunzip into an empty cache + read): {cold:.2f} s")

        def generate(name: str) -> Path:
            out = root / f"{name}-{next(fresh)}"
            get_scenario(name).generate(out, cache_dir=cache, **sizes)
            return out

        naive = best_of(args.repeats, lambda: naive_tint_bias(root / f"naive-{next(fresh)}", **sizes))
        ours = best_of(args.repeats, lambda: generate("tint-bias"))
        scenarios._WRITE_THREADS = 1
        one_thread = best_of(args.repeats, lambda: generate("tint-bias"))
        scenarios._WRITE_THREADS = 4
        n = sum(sizes.values())
        print(
            f"tint-bias, {n} PNGs (best of {args.repeats}): ptdiag {ours:.2f} s · naive per-image loop {naive:.2f} s "
            f"({naive / ours:.1f}x) · ptdiag with 1 write thread {one_thread:.2f} s ({one_thread / ours:.1f}x)\n"
        )

        print(f"{'scenario':<12} {'generate':>9} {'rerun':>9}")
        for scenario in list_scenarios():
            if scenario.name == "toy":
                continue
            out = generate(scenario.name)
            first = best_of(args.repeats, lambda s=scenario.name: generate(s))
            rerun = best_of(args.repeats, lambda s=scenario, o=out: s.generate(o, cache_dir=cache, **sizes))
            print(f"{scenario.name:<12} {first:>8.2f}s {rerun * 1000:>7.1f}ms")


if __name__ == "__main__":
    main()
