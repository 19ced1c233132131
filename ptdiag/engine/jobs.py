"""Jobs: independent units of work (one baseline run, one fine-tune, one feature extraction...) with a result file.

A job is a `JobSpec` (stage, name, JSON-able params) plus a module-level function `fn(spec, context) -> JobOutput`.
Its key hashes the spec with the data fingerprint, so a finished job is found again on rerun and skipped; results
are written atomically, so an interrupted run resumes with nothing lost. `LocalExecutor` runs jobs in this process;
`ptdiag.engine.executors.RayExecutor` runs them on a Ray cluster with the same `JobStore`. `prefetch` lets an
executor start jobs whose results are collected by a later `run` (independent stages overlap); locally it does nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self

import numpy as np

from ptdiag._io import atomic_write, write_json_atomic


@dataclass(frozen=True)
class JobParams:
    """Base of each job kind's typed parameters (`BaselineParams`, `FinetuneParams`, ...): JSON-able fields, hashed
    into the job's key. Fields named in `OPTIONAL` are left out of the key while None, so adding one keeps the keys
    of finished jobs."""

    OPTIONAL: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
                if not (k in self.OPTIONAL and v is None)}

    @classmethod
    def of(cls, spec: JobSpec) -> Self:
        """The typed parameters of `spec` (lists come back as tuples)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.params.items()})


@dataclass(frozen=True)
class JobSpec:
    stage: str
    name: str
    params: dict[str, Any]  # a JobParams' to_dict(): what the key hashes

    @classmethod
    def of(cls, stage: str, name: str, params: JobParams) -> JobSpec:
        return cls(stage, name, params.to_dict())

    def key(self, data_fingerprint: str) -> str:
        blob = json.dumps({"stage": self.stage, "params": self.params, "data": data_fingerprint}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class JobOutput:
    """What a job returns: small JSON-able metadata and named numpy arrays."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0
    cached: bool = False


def job_file_stem(stage: str, name: str) -> str:
    """`<stage>-<name>` as a job's result files begin (the name made safe for a file name)."""
    return f"{stage}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)[:60]}"


class JobStore:
    """Result files under `<run>/jobs/`: `<stage>-<name>-<key>.json` (+ `.npz`); the JSON is written last."""

    def __init__(self, root: Path, data_fingerprint: str):
        self.root = Path(root)
        self.fingerprint = data_fingerprint

    def path(self, spec: JobSpec, suffix: str) -> Path:
        """`<stage>-<name>-<key><suffix>` (names may contain dots, so no Path.with_suffix)."""
        return self.root / f"{job_file_stem(spec.stage, spec.name)}-{spec.key(self.fingerprint)}{suffix}"

    def done(self, spec: JobSpec) -> bool:
        return self.path(spec, ".json").exists()

    def load(self, spec: JobSpec) -> JobOutput:
        record = json.loads(self.path(spec, ".json").read_text(encoding="utf-8"))
        arrays: dict[str, np.ndarray] = {}
        if record.get("has_arrays"):
            with np.load(self.path(spec, ".npz"), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        return JobOutput(record["meta"], arrays, seconds=record.get("seconds", 0.0), cached=True)

    def save(self, spec: JobSpec, output: JobOutput) -> None:
        if output.arrays:  # streamed to the file: no second copy of large arrays (features) in memory
            atomic_write(self.path(spec, ".npz"), lambda fh: np.savez(fh, **output.arrays), mode="wb")
        record = {"stage": spec.stage, "name": spec.name, "params": spec.params, "data": self.fingerprint,
                  "seconds": output.seconds, "has_arrays": bool(output.arrays), "meta": output.meta}
        write_json_atomic(self.path(spec, ".json"), record)


JobFn = Callable[[JobSpec, Any], JobOutput]


class Executor(Protocol):
    def run(self, jobs: Sequence[JobSpec], fn: JobFn, context: Any) -> list[JobOutput]: ...

    def prefetch(self, jobs: Sequence[JobSpec], fn: JobFn, context: Any) -> None: ...


class LocalExecutor:
    """Run jobs one after another in this process, skipping those with a result file."""

    def __init__(self, store: JobStore, on_job: Callable[[JobSpec, JobOutput], None] | None = None):
        self.store = store
        self.on_job = on_job

    def prefetch(self, jobs: Sequence[JobSpec], fn: JobFn, context: Any) -> None:
        """Nothing to start ahead: `run` does the work in order."""

    def run(self, jobs: Sequence[JobSpec], fn: JobFn, context: Any) -> list[JobOutput]:
        outputs = []
        for spec in jobs:
            if self.store.done(spec):
                output = self.store.load(spec)
            else:
                start = time.perf_counter()
                output = fn(spec, context)
                output.seconds = time.perf_counter() - start
                self.store.save(spec, output)
            if self.on_job is not None:
                self.on_job(spec, output)
            outputs.append(output)
        return outputs
