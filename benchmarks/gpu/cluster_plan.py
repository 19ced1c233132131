"""Simulated cluster plan: a budget's job graph on N images -> GPU-hours, critical path, makespan on 1/8/64 GPUs.

The graph is the one `ptdiag analyze` runs (`--executor ray` submits the baselines and the support split as soon as
their inputs exist; the pre-trained stages follow their data dependencies: features -> probe -> per strategy the
LR grid -> the extra seeds, strategies one after another as in `pipeline._pretrained_evals`). Job times come from a
throughput per job kind (images x epochs / images per second, scaled by pixels), either measured from a finished
run's job records (``--from-run RUN``: its ``jobs/*.json`` seconds divided by the work each job did) or the
defaults below, which are assumptions for one A100-class GPU with AMP, not measurements. Jobs are list-scheduled
(longest remaining path first) on G identical GPUs; the CPU-only jobs (probe, support) do not hold a GPU.
``--from-run RUN --as-run`` schedules that run's own jobs with their measured seconds instead.
Usage: ``python benchmarks/gpu/cluster_plan.py [--budget full] [--images 1281167] [--shift 50000] [--from-run RUN
[--as-run]] [--parallel-strategies]``.
"""

from __future__ import annotations

import argparse
import heapq
import json
from dataclasses import dataclass, field
from pathlib import Path

from ptdiag.config import BUDGETS, AnalyzeConfig

# Images per second at 224 px on one GPU (assumed, see the docstring): training and inference.
# A CPU job (probe, support) takes `cpu_job_s` per 1.28 M reference images, linearly.
ASSUMED = {"train_pretrained": 1400.0, "infer_pretrained": 4500.0, "train_baseline": 9000.0, "cpu_job_s": 600.0}
IMAGENET = 1_281_167


@dataclass
class Job:
    name: str
    seconds: float
    gpu: bool = True
    after: list[str] = field(default_factory=list)


def _scale(px: int) -> float:
    return (px / 224) ** 2


def build_graph(cfg: AnalyzeConfig, n_ref: int, n_shift: int, rates: dict[str, float],
                parallel_strategies: bool = False) -> list[Job]:
    """The jobs and their dependencies; `parallel_strategies`: FT and LP-FT both start after the probe (a possible
    pipeline change), instead of one strategy after the other (what `analyze` does today)."""
    n_ref, n_shift = min(n_ref, cfg.max_reference or n_ref), min(n_shift, cfg.max_shift or n_shift)
    n_train = int(n_ref * (1 - cfg.val_fraction - cfg.test_fraction))
    n_eval = n_ref - n_train + n_shift  # val + test + shift, predicted at each evaluated epoch
    jobs = []
    for fraction in cfg.baseline_fractions:
        for seed in cfg.baseline_seeds:
            work = (fraction * n_train * cfg.baseline_epochs) / rates["train_baseline"]
            work += n_eval * len(cfg.baseline_eval_epochs) / (3 * rates["train_baseline"])
            jobs.append(Job(f"baseline f{fraction} s{seed}", work * _scale(cfg.baseline_image_size)))
    for model in cfg.model:
        if cfg.scratch_same_arch:
            work = n_train * cfg.baseline_epochs / rates["train_pretrained"]
            work += n_eval * len(cfg.baseline_eval_epochs) / rates["infer_pretrained"]
            jobs.append(Job(f"{model} from scratch", work * _scale(cfg.image_size)))
        feats = f"features {model}"
        jobs.append(Job(feats, (n_ref + n_shift) / rates["infer_pretrained"] * _scale(cfg.image_size)))
        cpu = rates["cpu_job_s"] * n_ref / IMAGENET
        jobs.append(Job(f"probe {model}", cpu, gpu=False, after=[feats]))
        jobs.append(Job(f"support {model}", cpu, gpu=False, after=[feats]))
        previous = [f"probe {model}"]
        for strategy in (s for s in cfg.strategies if s != "lp"):
            ft = (n_train * cfg.ft_epochs / rates["train_pretrained"] + n_eval / rates["infer_pretrained"])
            ft *= _scale(cfg.image_size)
            grid = [Job(f"{model} {strategy} lr{lr:g}", ft, after=list(previous)) for lr in cfg.ft_lrs]
            seeds = [Job(f"{model} {strategy} seed{k}", ft, after=[g.name for g in grid])
                     for k in range(1, cfg.ft_seeds)]
            jobs += grid + seeds
            previous = previous if parallel_strategies else [j.name for j in grid + seeds]
    return jobs


def critical_path(jobs: list[Job]) -> tuple[float, list[str]]:
    by_name = {j.name: j for j in jobs}
    memo: dict[str, tuple[float, list[str]]] = {}

    def longest(name: str) -> tuple[float, list[str]]:
        if name not in memo:
            job = by_name[name]
            best = max((longest(d) for d in job.after), default=(0.0, []))
            memo[name] = (best[0] + job.seconds, [*best[1], name])
        return memo[name]

    return max((longest(j.name) for j in jobs), key=lambda t: t[0])


def makespan(jobs: list[Job], gpus: int) -> float:
    """List scheduling: when a GPU frees, start the ready job with the longest path to the end."""
    by_name = {j.name: j for j in jobs}
    children: dict[str, list[str]] = {j.name: [] for j in jobs}
    for j in jobs:
        for d in j.after:
            children[d].append(j.name)
    tail: dict[str, float] = {}

    def rest(name: str) -> float:
        if name not in tail:
            tail[name] = by_name[name].seconds + max((rest(c) for c in children[name]), default=0.0)
        return tail[name]

    waiting = {j.name: len(j.after) for j in jobs}
    ready = [(-rest(n), n) for n, k in waiting.items() if k == 0]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    free, now, finished = gpus, 0.0, 0.0
    while ready or running:
        while ready:
            _, name = ready[0]
            if by_name[name].gpu and free == 0:
                break
            heapq.heappop(ready)
            free -= by_name[name].gpu
            heapq.heappush(running, (now + by_name[name].seconds, name))
        now, name = heapq.heappop(running)
        free += by_name[name].gpu
        finished = max(finished, now)
        for child in children[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (-rest(child), child))
    return finished


def rates_from_run(run: Path) -> dict[str, float]:
    """Images per second at 224 px-equivalent, from a finished run's job records and config."""
    cfg = AnalyzeConfig(**{k: tuple(v) if isinstance(v, list) else v
                           for k, v in json.loads((run / "config.json").read_text()).items()
                           if k in AnalyzeConfig.__dataclass_fields__})
    results = json.loads((run / "results.json").read_text())
    n_ref, n_shift = results["data"]["reference"]["n"], results["data"]["shift"]["n"]
    n_train = int(n_ref * (1 - cfg.val_fraction - cfg.test_fraction))
    rates, seen = dict(ASSUMED), {"train_pretrained": [], "infer_pretrained": [], "train_baseline": [], "cpu": []}
    for record in (json.loads(p.read_text()) for p in (run / "jobs").glob("*.json")):
        p, s = record["params"], max(record["seconds"], 1e-6)
        if record["stage"] == "features":
            seen["infer_pretrained"].append((n_ref + n_shift) * _scale(p["image_size"]) / s)
        elif record["stage"] == "finetune":
            seen["train_pretrained"].append(n_train * p["epochs"] * _scale(p["image_size"]) / s)
        elif record["stage"] == "baseline" and p.get("width"):
            seen["train_baseline"].append(p["fraction"] * n_train * p["epochs"] * _scale(p["image_size"]) / s)
        elif record["stage"] in ("probe", "support"):
            seen["cpu"].append(s * IMAGENET / n_ref)
    for kind, values in seen.items():
        if values:
            rates["cpu_job_s" if kind == "cpu" else kind] = sum(values) / len(values)
    return rates


def graph_of_run(run: Path) -> list[Job]:
    """The jobs of a finished run as they were, with their measured seconds and the pipeline's dependencies."""
    seed = json.loads((run / "config.json").read_text())["seed"]
    records = [json.loads(p.read_text()) for p in sorted((run / "jobs").glob("*.json"))]
    names = {stage: [f"{r['stage']}/{r['name']}" for r in records if r["stage"] == stage] for stage in
             ("baseline", "features", "probe", "activations", "support")}
    grid = {}
    for r in records:
        if r["stage"] == "finetune" and r["params"]["seed"] == seed:
            grid.setdefault(r["params"]["strategy"], []).append(f"finetune/{r['name']}")
    jobs = []
    for r in records:
        name, stage = f"{r['stage']}/{r['name']}", r["stage"]
        after = {"probe": names["features"], "support": names["features"], "activations": names["features"],
                 "remedies": names["baseline"] + names["features"] + names["support"]}.get(stage, [])
        if stage == "finetune":
            in_grid = r["params"]["seed"] == seed
            after = names["probe"] + names["activations"] if in_grid else grid.get(r["params"]["strategy"], [])
        jobs.append(Job(name, r["seconds"], gpu=stage not in ("probe", "support", "remedies"), after=list(after)))
    return jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", choices=list(BUDGETS), default="full")
    parser.add_argument("--images", type=int, default=IMAGENET, help="reference images (ImageNet train)")
    parser.add_argument("--shift", type=int, default=50_000, help="shifted images")
    parser.add_argument("--from-run", type=Path, help="take per-job throughput from this finished run")
    parser.add_argument("--gpus", default="1,8,64")
    parser.add_argument("--parallel-strategies", action="store_true", help="FT and LP-FT both right after the probe")
    parser.add_argument("--as-run", action="store_true", help="with --from-run: schedule that run's own jobs")
    args = parser.parse_args()
    cfg = AnalyzeConfig(budget=args.budget, **BUDGETS[args.budget])
    if args.as_run:
        jobs = graph_of_run(args.from_run)
        print(f"{args.from_run}: {len(jobs)} jobs with their measured seconds")
    else:
        rates = rates_from_run(args.from_run) if args.from_run else dict(ASSUMED)
        jobs = build_graph(cfg, args.images, args.shift, rates, args.parallel_strategies)
        print(f"budget {args.budget}: {len(jobs)} jobs ({sum(j.gpu for j in jobs)} on a GPU) on {args.images:,} + "
              f"{args.shift:,} images; throughput " + ", ".join(f"{k} {v:.3g}" for k, v in rates.items()))
    gpu_hours = sum(j.seconds for j in jobs if j.gpu) / 3600
    print(f"{gpu_hours:.4g} GPU-hours")
    length, path = critical_path(jobs)
    by = {j.name: j.seconds for j in jobs}
    unit, div = ("s", 1) if args.as_run else ("h", 3600)
    print(f"critical path {length / div:.2f} {unit}: " + " -> ".join(f"{n} ({by[n] / div:.2f} {unit})" for n in path))
    for g in (int(x) for x in args.gpus.split(",")):
        span = makespan(jobs, g)
        print(f"{g:3d} GPU(s): makespan {span / div:9.2f} {unit}  (utilisation {gpu_hours * 3600 / (span * g):.0%})")


if __name__ == "__main__":
    main()
