import numpy as np

from ptdiag.engine.jobs import JobOutput, JobSpec, JobStore, LocalExecutor


def test_store_roundtrip_and_key_depends_on_data(tmp_path):
    spec = JobSpec("baseline", "cnn f/0.5", {"lr": 0.1, "seeds": [1, 2]})
    assert spec.key("a") != spec.key("b")
    assert spec.key("a") == JobSpec("baseline", "other name", {"seeds": [1, 2], "lr": 0.1}).key("a")
    store = JobStore(tmp_path, "a")
    assert not store.done(spec)
    store.save(spec, JobOutput({"acc": 0.5}, {"pred": np.arange(3)}))
    assert store.done(spec) and not JobStore(tmp_path, "b").done(spec)
    loaded = store.load(spec)
    assert loaded.cached and loaded.meta == {"acc": 0.5}
    np.testing.assert_array_equal(loaded.arrays["pred"], np.arange(3))
    assert not list(tmp_path.glob("*.tmp"))


def test_executor_skips_finished_jobs(tmp_path):
    calls = []

    def fn(spec, ctx):
        calls.append(spec.name)
        return JobOutput({"n": spec.params["n"] * ctx})

    store = JobStore(tmp_path, "fp")
    jobs = [JobSpec("s", f"j{i}", {"n": i}) for i in range(3)]
    first = LocalExecutor(store).run(jobs, fn, 10)
    second = LocalExecutor(store).run(jobs, fn, 10)
    assert calls == ["j0", "j1", "j2"]
    assert [o.meta for o in first] == [o.meta for o in second] == [{"n": 0}, {"n": 10}, {"n": 20}]
