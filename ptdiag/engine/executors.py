"""Run jobs on a Ray cluster (`ptdiag analyze --executor ray`): same job keys, same `JobStore`, same results.

Each job is one Ray task with declared resources: training and feature jobs ask for a GPU when the cluster has
any (and `--device` is not cpu), every job for CPUs that are also its torch threads: by default as many as a local
run here would use, because CPU results depend on the thread count (so `--executor ray` reproduces local results
bit for bit); `PTDIAG_RAY_CPUS_PER_JOB` trades that for more concurrent jobs on CPU nodes. Ray schedules, retries a
failed task (`max_retries`, exceptions included) and cancels; nothing here is a scheduler. Workers write each
result into the run's `JobStore` themselves, so whatever finished is on disk even when the driver is killed, and a
rerun reuses it. The context reaches workers through the object store (`ray.put` once per stage); it holds no
image pixels: `RunData` images are `DiskImages` rows that every worker reopens on shared storage. Hence the check
at start that the run directory and the decode cache are shared (a worker on each node reads what the driver
wrote and writes back what the driver then reads).

Ray is optional (`pip install 'ptdiag[ray]'`); it is imported only here, only when this executor is chosen.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ptdiag.engine.jobs import Executor, JobFn, JobOutput, JobSpec, JobStore
from ptdiag.errors import PtdiagError, ResourceError, UsageError

log = logging.getLogger("ptdiag")

GPU_STAGES = frozenset({"baseline", "features", "finetune", "activations"})  # the jobs that train or run a network
MAX_RETRIES = 2
CPUS_ENV = "PTDIAG_RAY_CPUS_PER_JOB"
OnJob = Callable[[JobSpec, JobOutput], None]


def import_ray():
    try:
        import ray
    except ImportError:
        raise UsageError("--executor ray needs Ray, which is not installed",
                         hint="pip install 'ptdiag[ray]' (or use --executor local)") from None
    return ray


def connect(address: str | None = None):
    """Join the cluster at `address` (else `$RAY_ADDRESS`), or start a local Ray instance; return the module."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or None
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ResourceError(f"cannot reach the Ray cluster at {address or 'a new local instance'}: {exc}",
                            hint="check --ray-address / RAY_ADDRESS (e.g. ray://head:10001 or head:6379)") from None
    return ray


def _no_progress(event: str, payload: Any) -> None:
    """Workers report job completions through their results, not step by step."""


def _worker_device(requested: str):
    import torch

    from ptdiag.engine.models import pick_device

    # A task granted one GPU sees it as cuda:0 (Ray sets CUDA_VISIBLE_DEVICES), whatever index was asked for.
    if requested.startswith("cuda"):
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    return pick_device(requested)


def run_job(spec: JobSpec, fn: JobFn, ctx: Any, store_root: str, fingerprint: str, threads: int) -> JobOutput:
    """The Ray task: run one job with `threads` torch threads, save its result in the shared store, return it."""
    import torch
    from threadpoolctl import threadpool_limits

    # Pooled workers keep the thread settings of whatever task started them (Ray sets OMP_NUM_THREADS per task
    # shape): set torch's and the BLAS/OpenMP pools for this job, since CPU numbers depend on them.
    torch.set_num_threads(threads)
    ctx = dataclasses.replace(ctx, device=_worker_device(ctx.config.device))
    start = time.perf_counter()
    with threadpool_limits(limits=threads):
        output = fn(spec, ctx)
    output.seconds = time.perf_counter() - start
    JobStore(Path(store_root), fingerprint).save(spec, output)
    return output


class RayExecutor:
    """`Executor` on Ray. `prefetch` starts jobs now and `run` collects them later, so independent stages overlap."""

    def __init__(self, store: JobStore, device: str = "auto", on_job: OnJob | None = None,
                 address: str | None = None, shared: Sequence[Path] = ()):
        self.ray = connect(address)
        self.store = JobStore(Path(store.root).resolve(), store.fingerprint)
        self.on_job = on_job
        resources = self.ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0)) if device != "cpu" else 0
        cpus = int(resources.get("CPU", 1))
        self.cpus_per_job = int(os.environ.get(CPUS_ENV) or self._local_threads())
        self.cpus_per_gpu_job = max(1, min(self.cpus_per_job, cpus // max(1, self.gpus)))
        self.pending: dict[str, Any] = {}  # job key -> ObjectRef of its running task
        self._ctx_refs: dict[tuple, Any] = {}
        self._task = self.ray.remote(run_job)
        check_shared_storage([self.store.root, *shared], self._probe_nodes)
        log.info("ray executor: %d CPUs, %d GPUs, %d CPUs per job", cpus, self.gpus, self.cpus_per_job)

    def _local_threads(self) -> int:
        """The torch threads a local run would use here (CPU results depend on them), within the largest node."""
        import torch

        largest = max((n["Resources"].get("CPU", 0) for n in self.ray.nodes() if n.get("Alive")), default=1)
        return max(1, min(torch.get_num_threads(), int(largest)))

    # ------------------------------------------------------------------------------------------- the protocol

    def prefetch(self, jobs: Sequence[JobSpec], fn: JobFn, context: Any) -> None:
        """Submit the jobs that are not finished or running; their results are collected by a later `run`."""
        for spec in jobs:
            key = spec.key(self.store.fingerprint)
            if key not in self.pending and not self.store.done(spec):
                self.pending[key] = self._submit(spec, fn, context)

    def run(self, jobs: Sequence[JobSpec], fn: JobFn, context: Any) -> list[JobOutput]:
        self.prefetch(jobs, fn, context)
        outputs: dict[str, JobOutput] = {}
        waiting: dict[Any, JobSpec] = {}
        for spec in jobs:
            key = spec.key(self.store.fingerprint)
            if key in self.pending:
                waiting[self.pending[key]] = spec
            elif key not in outputs:
                outputs[key] = self._report(spec, self.store.load(spec))
        try:
            failures = self._collect(waiting, outputs)
        except KeyboardInterrupt:
            self.cancel()
            raise
        if failures:
            self._finish_others()
            raise _failure(failures)
        return [outputs[spec.key(self.store.fingerprint)] for spec in jobs]

    def cancel(self) -> None:
        """Cancel every running task (Ctrl-C); finished jobs stay in the store."""
        for ref in self.pending.values():
            self.ray.cancel(ref, force=True)
        log.warning("cancelled %d running job(s); finished jobs are kept in %s", len(self.pending), self.store.root)
        self.pending.clear()

    # ------------------------------------------------------------------------------------------------ helpers

    def _submit(self, spec: JobSpec, fn: JobFn, context: Any):
        gpu = 1 if self.gpus and spec.stage in GPU_STAGES else 0
        cpus = self.cpus_per_gpu_job if gpu else self.cpus_per_job
        task = self._task.options(num_cpus=cpus, num_gpus=gpu, max_retries=MAX_RETRIES, retry_exceptions=True,
                                  name=f"{spec.stage}/{spec.name}")
        return task.remote(spec, fn, self._context_ref(context), str(self.store.root), self.store.fingerprint, cpus)

    def _context_ref(self, ctx: Any):
        """The context without its driver-only progress callback, put in the object store once per context."""
        fields = {f.name: getattr(ctx, f.name) for f in dataclasses.fields(ctx)}
        state = (id(ctx), *sorted((name, tuple(v)) for name, v in fields.items() if isinstance(v, dict)))
        if state not in self._ctx_refs:
            slim = dataclasses.replace(ctx, progress=_no_progress)
            self._ctx_refs = {state: self.ray.put(slim)}  # older states are no longer needed by new tasks
        return self._ctx_refs[state]

    def _collect(self, waiting: dict[Any, JobSpec], outputs: dict[str, JobOutput]) -> list[tuple[JobSpec, Exception]]:
        failures = []
        while waiting:
            done, _ = self.ray.wait(list(waiting), num_returns=1)
            for ref in done:
                spec = waiting.pop(ref)
                key = spec.key(self.store.fingerprint)
                self.pending.pop(key, None)
                try:
                    outputs[key] = self._report(spec, self.ray.get(ref))
                except self.ray.exceptions.RayError as exc:
                    cause = getattr(exc, "cause", None) or exc
                    log.error("job %s/%s failed after %d retries: %s", spec.stage, spec.name, MAX_RETRIES,
                              _one_line(cause))
                    failures.append((spec, cause))
        return failures

    def _report(self, spec: JobSpec, output: JobOutput) -> JobOutput:
        if self.on_job is not None:
            self.on_job(spec, output)
        return output

    def _finish_others(self) -> None:
        """After a failure, let the other running jobs finish so that their results are kept."""
        if self.pending:
            log.info("waiting for %d running job(s) to finish before stopping", len(self.pending))
            self.ray.wait(list(self.pending.values()), num_returns=len(self.pending))
            self.pending.clear()

    def _probe_nodes(self, folder: Path, token: str) -> list[tuple[str, str | None]]:
        """On every alive node: read the driver's token in `folder`, write the node's own; (node, error or None)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        probe = self.ray.remote(probe_folder)
        refs = [probe.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                .remote(str(folder), token, n["NodeID"][:12]) for n in nodes]
        return [(n.get("NodeManagerAddress", n["NodeID"][:12]), err)
                for n, err in zip(nodes, self.ray.get(refs), strict=True)]


# ----------------------------------------------------------------------------------------------- shared storage


def probe_folder(folder: str, token: str, node: str) -> str | None:
    """Worker side of the check: the driver's token must be readable; then leave one for the driver."""
    try:
        seen = (Path(folder) / f".ptdiag-shared-{token}").read_text(encoding="utf-8")
        if seen != token:
            return "the driver's check file has other contents"
        (Path(folder) / f".ptdiag-shared-{token}-{node}").write_text(token, encoding="utf-8")
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


Probe = Callable[[Path, str], list[tuple[str, str | None]]]


def check_shared_storage(folders: Sequence[Path], probe: Probe) -> None:
    """Raise ResourceError (exit 5) unless every node reads the driver's file and the driver reads every node's."""
    for folder in dict.fromkeys(Path(f).resolve() for f in folders):
        folder.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        mine = folder / f".ptdiag-shared-{token}"
        mine.write_text(token, encoding="utf-8")
        try:
            results = probe(folder, token)
            for node, error in results:
                back = list(folder.glob(f".ptdiag-shared-{token}-*"))
                if error is None and not any(p.read_text(encoding="utf-8") == token for p in back):
                    error = "the driver cannot see the file the worker wrote"
                if error is not None:
                    raise ResourceError(
                        f"{folder} is not shared with Ray node {node}: {error}",
                        hint="put the run directory (--out) and the decode cache (--cache-dir or PTDIAG_CACHE_DIR) on "
                             "storage every node mounts at the same path; see docs/SCALING.md")
        finally:
            for path in folder.glob(f".ptdiag-shared-{token}*"):
                path.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------------------ errors


def _one_line(exc: Exception) -> str:
    text = exc.message if isinstance(exc, PtdiagError) else str(exc)
    return (text.strip().splitlines() or [type(exc).__name__])[0][:300]


def _failure(failures: list[tuple[JobSpec, Exception]]) -> PtdiagError:
    if len(failures) == 1 and isinstance(failures[0][1], PtdiagError):
        spec, cause = failures[0]
        return type(cause)(f"job {spec.stage}/{spec.name}: {cause.message}", hint=cause.hint)
    names = "; ".join(f"{spec.stage}/{spec.name}: {_one_line(cause)}" for spec, cause in failures)
    return ResourceError(f"{len(failures)} job(s) failed after {MAX_RETRIES} retries: {names}",
                         hint="finished jobs are kept: fix the cause and rerun the same command to resume")


def make_executor(config: Any, run_dir: Path, store: JobStore, on_job: OnJob | None = None) -> Executor:
    """`LocalExecutor`, or `RayExecutor` for `--executor ray` (checks that the run dir and cache are shared)."""
    from ptdiag.engine.jobs import LocalExecutor

    if getattr(config, "executor", "local") != "ray":
        return LocalExecutor(store, on_job=on_job)
    from ptdiag.data.decode_cache import default_cache_dir

    cache = Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir()
    return RayExecutor(store, device=config.device, on_job=on_job, address=config.ray_address,
                       shared=[run_dir, cache])
