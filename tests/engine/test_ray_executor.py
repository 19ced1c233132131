"""`--executor ray` on a local Ray instance: same results as local, resume reuses finished jobs, failures named."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from ptdiag.cli import app
from ptdiag.engine.executors import RayExecutor, check_shared_storage, import_ray
from ptdiag.engine.jobs import JobOutput, JobSpec, JobStore
from ptdiag.errors import ResourceError, UsageError
from ptdiag.scenarios import get_scenario

ray = pytest.importorskip("ray")

TINY = ["--image-size", "40", "--baseline-fractions", "1.0", "--baseline-seeds", "0,1", "--baseline-epochs", "2",
        "--baseline-eval-epochs", "1,2", "--ft-epochs", "1", "--ft-lrs", "0.001", "--folds", "3",
        "--bootstrap", "50", "--strategies", "lp,lpft", "--min-per-class", "2", "--seed", "0"]
SAME = ("baselines", "pretrained", "fit", "decomposition", "support", "verdict", "data")


def _same(results: dict) -> dict:
    """The result sections, timings aside (the support split records its own seconds)."""
    out = {key: results[key] for key in SAME}
    out["support"] = {k: v for k, v in (out["support"] or {}).items() if k != "seconds"}
    return out


@pytest.fixture(scope="module")
def ray_instance():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def runs(ray_instance, tmp_path_factory):
    """The same tiny analysis run locally and through Ray (sharing one decode cache)."""
    root = tmp_path_factory.mktemp("ray")
    data = get_scenario("toy").generate(root / "toy", n_reference=120, n_shift=64, seed=0)

    def analyze(out: Path, *extra: str) -> dict:
        result = CliRunner().invoke(app, ["analyze", "--train", str(data.reference_dir), "--shift",
                                          str(data.shift_dir), "--out", str(out), "--cache-dir", str(root / "cache"),
                                          "-q", *TINY, *extra])
        assert result.exit_code == 0, result.output
        return json.loads((out / "results.json").read_text())

    return analyze, analyze(root / "local"), analyze(root / "ray", "--executor", "ray"), root


def test_ray_gives_the_local_results(runs):
    _, local, on_ray, root = runs
    for key, value in _same(local).items():
        assert _same(on_ray)[key] == value, key
    assert on_ray["config"]["executor"] == "ray"
    local_jobs = sorted(p.name for p in (root / "local" / "jobs").glob("*.json"))
    assert local_jobs == sorted(p.name for p in (root / "ray" / "jobs").glob("*.json"))  # same keys, same store
    assert "job baseline/" in (root / "ray" / "ptdiag.log").read_text()  # completions reach the log
    assert list((root / "ray" / "arrays").glob("reference-*-40to32px.npy"))  # baselines read resized copies on disk


def test_resumed_ray_run_recomputes_nothing_finished(runs):
    """As after a killed driver: some jobs are on disk, the rest are not, there is no results.json."""
    analyze, _, on_ray, root = runs
    out = root / "resumed"
    (out / "jobs").mkdir(parents=True)
    kept = {}
    for path in sorted((root / "ray" / "jobs").iterdir()):
        if not path.name.startswith(("finetune", "support")):  # these 'did not finish'
            target = out / "jobs" / path.name
            target.write_bytes(path.read_bytes())
            kept[target] = target.stat().st_mtime_ns
    (out / "split.json").write_bytes((root / "ray" / "split.json").read_bytes())
    resumed = analyze(out, "--executor", "ray")
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in kept.items())  # nothing finished was redone
    assert len(list((out / "jobs").glob("*.json"))) == len(list((root / "ray" / "jobs").glob("*.json")))
    for key, value in _same(on_ray).items():
        assert _same(resumed)[key] == value, key


@dataclasses.dataclass
class _Ctx:
    config: Any
    progress: Any
    device: Any = None


def _maybe_fail(spec: JobSpec, ctx: _Ctx) -> JobOutput:
    attempts = Path(spec.params["dir"]) / f"{spec.name}.attempts"
    attempts.write_text(attempts.read_text() + "x" if attempts.exists() else "x")
    if spec.params["fail"]:
        raise ValueError("this job always fails")
    return JobOutput({"name": spec.name})


def test_a_failing_job_is_retried_then_named_and_the_others_kept(ray_instance, tmp_path):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    store = JobStore(tmp_path / "jobs", "fp")
    jobs = [JobSpec("probe", name, {"dir": str(tmp_path), "fail": name == "bad", "name": name})
            for name in ("ok1", "bad", "ok2")]
    executor = RayExecutor(store, device="cpu", shared=[tmp_path])
    with pytest.raises(ResourceError, match=r"probe/bad: this job always fails") as err:
        executor.run(jobs, _maybe_fail, _Ctx(SimpleNamespace(device="cpu"), print))
    assert err.value.exit_code == 5
    assert (tmp_path / "bad.attempts").read_text() == "x" * 3  # one run and Ray's two retries
    assert store.done(jobs[0]) and store.done(jobs[2]) and not store.done(jobs[1])


def _sleep(spec: JobSpec, ctx: _Ctx) -> JobOutput:
    import time

    time.sleep(spec.params["seconds"])
    return JobOutput({"name": spec.name})


def test_ctrl_c_cancels_running_jobs_and_keeps_finished_ones(ray_instance, tmp_path, monkeypatch):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    monkeypatch.setenv("PTDIAG_RAY_CPUS_PER_JOB", "1")
    store = JobStore(tmp_path / "jobs", "fp")
    fast, slow = JobSpec("probe", "fast", {"seconds": 0}), JobSpec("probe", "slow", {"seconds": 120})
    executor = RayExecutor(store, device="cpu", shared=[tmp_path])
    ctx = _Ctx(SimpleNamespace(device="cpu"), print)
    executor.prefetch([slow], _sleep, ctx)
    executor.run([fast], _sleep, ctx)
    refs = list(executor.pending.values())
    real_wait = executor.ray.wait
    monkeypatch.setattr(executor.ray, "wait", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        executor.run([slow], _sleep, ctx)
    monkeypatch.setattr(executor.ray, "wait", real_wait)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(refs[0], timeout=60)
    assert store.done(fast) and not store.done(slow) and not executor.pending


def test_storage_the_workers_cannot_see_is_refused(tmp_path):
    with pytest.raises(ResourceError, match="not shared with Ray node n1") as err:
        check_shared_storage([tmp_path], lambda folder, token: [("n1", "FileNotFoundError: no such file")])
    assert err.value.exit_code == 5 and "--cache-dir" in err.value.hint
    with pytest.raises(ResourceError, match="cannot see the file the worker wrote"):
        check_shared_storage([tmp_path], lambda folder, token: [("n2", None)])  # 'wrote' somewhere else
    assert list(tmp_path.iterdir()) == []  # check files are cleaned up


def test_ray_is_optional(monkeypatch):
    code = "import sys, ptdiag, ptdiag.engine.pipeline, ptdiag.engine.executors; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UsageError, match="needs Ray") as err:
        import_ray()
    assert "ptdiag[ray]" in err.value.hint and err.value.exit_code == 2
