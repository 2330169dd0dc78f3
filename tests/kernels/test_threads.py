"""Where the kernels' parts run: the objectives' pool outside training, the booster's own OpenMP
team inside ``xgb.train``/``lgb.train`` (:mod:`gbdt_pwiser._threads`), with the same bits either way."""

import ctypes.util
import threading
import time

import numpy as np
import pytest

from gbdt_pwiser import CTCVRClassifier, PWiseRObjective, _threads, funnel_label, initial_margin

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")

GOMP = ctypes.util.find_library("gomp")


@pytest.fixture(scope="module")
def gomp():
    """The system's libgomp (LightGBM's OpenMP runtime)."""
    if GOMP is None:
        pytest.skip("no libgomp on this machine")
    return ctypes.CDLL(GOMP)


@pytest.fixture(scope="module")
def team(gomp):
    return _threads.OpenMPTeam(gomp)


@pytest.mark.parametrize("n_parts, threads", [(2, None), (3, 1), (7, 2), (5, 4), (2, 8)])
def test_team_runs_every_part_once(team, n_parts, threads):
    """Each part runs exactly once whatever the team's size (more parts than threads, fewer, one thread)."""
    seen: list[int] = []
    team.run(seen.append, n_parts, threads)
    assert sorted(seen) == list(range(n_parts))


def test_team_runs_parts_at_the_same_time_on_the_runtimes_threads(team):
    """Parts that release the GIL overlap, and run on the caller and the runtime's own threads
    (threads Python did not start), never on the pool's."""
    where: dict[int, int] = {}
    python_threads = {t.native_id for t in threading.enumerate()} - {threading.get_native_id()}

    def part(p):
        where[p] = threading.get_native_id()
        time.sleep(0.2)  # releases the GIL, like the nogil kernels

    t = time.perf_counter()
    team.run(part, 4)
    assert time.perf_counter() - t < 0.6  # 4 x 0.2 s one after another would take 0.8 s
    assert len(set(where.values())) == 4
    assert not set(where.values()) & python_threads


def test_only_threads_with_a_part_enter_python(gomp):
    """A region has the booster's team size; its threads numbered from the number of parts on return
    in compiled code, without waiting for the GIL."""
    entered: list[int] = []

    class Counting(_threads.OpenMPTeam):
        def _body(self, data):
            entered.append(threading.get_native_id())
            return super()._body(data)

    team = Counting(gomp)
    done: list[int] = []
    team.run(lambda p: (time.sleep(0.05), done.append(p)), 2, threads=8)
    assert sorted(done) == [0, 1] and 1 <= len(entered) <= 2
    entered.clear()
    team.run(done.append, 5, threads=3)  # more parts than threads: every thread enters and loops
    assert sorted(done[2:]) == [0, 1, 2, 3, 4] and len(entered) <= 3


def test_the_runtimes_threads_keep_their_python_thread_state_between_regions(team):
    """A team thread keeps one Python thread state across regions (a thread-local set in one region
    is there in the next), instead of a new one per region; the caller's is its own."""
    local = threading.local()
    seen: list[tuple[int, bool]] = []

    def part(p):
        seen.append((threading.get_native_id(), getattr(local, "mark", False)))
        local.mark = True
        time.sleep(0.02)  # every thread of the region takes a part

    for _ in range(4):
        team.run(part, 3)
    by_thread: dict[int, list[bool]] = {}
    for tid, marked in seen:
        by_thread.setdefault(tid, []).append(marked)
    workers = {tid: m for tid, m in by_thread.items() if tid != threading.get_native_id()}
    assert len(workers) == 2 and all(len(m) >= 2 for m in workers.values())
    assert all(m == [False] + [True] * (len(m) - 1) for m in by_thread.values()), by_thread
    assert set(workers) <= _threads._kept


def test_team_raises_a_parts_error_after_every_part_ran(team):
    done: list[int] = []

    def part(p):
        if p == 1:
            raise ValueError("part 1 failed")
        time.sleep(0.01)
        done.append(p)

    with pytest.raises(ValueError, match="part 1 failed"):
        team.run(part, 4)
    assert sorted(done) == [0, 2, 3]
    team.run(done.append, 2)  # the team still works
    assert sorted(done) == [0, 0, 1, 2, 3]


def test_booster_team_is_the_boosters_runtime(monkeypatch):
    """The team of each booster library is found through its own loaded library; None for a library
    that is not loaded or has no GOMP_parallel (then the pool runs the parts)."""
    assert isinstance(_threads.booster_team("xgboost"), _threads.OpenMPTeam)
    assert isinstance(_threads.booster_team("lightgbm"), _threads.OpenMPTeam)
    assert _threads.booster_team(None) is None
    monkeypatch.setattr(_threads, "_teams", {})
    monkeypatch.setattr(xgb.core, "_LIB", object())  # no GOMP_parallel: a build without OpenMP
    assert _threads.booster_team("xgboost") is None


@pytest.fixture
def where_parts_run(monkeypatch):
    """Counts the passes run on an OpenMP team and the sizes of their regions; fails if the pool is
    asked for threads."""
    seen = {"team": 0, "sizes": set()}
    real = _threads.OpenMPTeam.run

    def run(self, part, n_parts, threads=None):
        seen["team"] += 1
        seen["sizes"].add(threads)
        return real(self, part, n_parts, threads)

    def no_pool(workers):
        raise AssertionError("a pass inside training went to the objectives' pool")

    monkeypatch.setattr(_threads.OpenMPTeam, "run", run)
    monkeypatch.setattr(_threads, "_executor", no_pool)
    monkeypatch.setattr(_threads, "ROWS_PER_THREAD", 1000)  # small data still takes 2 parts
    return seen


def _data(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    click = rng.random(n) < 0.2
    y = funnel_label(click.astype(int), (click & (rng.random(n) < 0.3)).astype(int))
    X = rng.normal(size=(n, 5)) + 0.5 * y[:, None]
    return X, y, np.arange(n) // 20


@pytest.mark.parametrize("kw", [{}, {"pairs": 3}, {"lam": 0.0}])
def test_inside_training_the_parts_run_on_the_boosters_team_with_the_same_bits(where_parts_run, kw):
    X, y, qid = _data()
    params = {"tree_method": "hist", "max_depth": 4, "base_score": initial_margin(y), "disable_default_eval_metric": 1}
    models = [
        xgb.train(params, xgb.DMatrix(X, label=y, qid=qid, nthread=2), 4, obj=PWiseRObjective(n_jobs=n_jobs, **kw))
        for n_jobs in (None, 1)
    ]
    assert where_parts_run["team"] >= 4  # a pass a round in the 2-thread fit; one thread runs no region
    assert where_parts_run["sizes"] == {2}  # regions of the booster's team size: no resizing of its team
    d = xgb.DMatrix(X)
    assert np.array_equal(models[0].predict(d, output_margin=True), models[1].predict(d, output_margin=True))

    where_parts_run["team"] = 0
    init = np.full(y.size, initial_margin(y))
    lgb_models = [
        lgb.train(
            {"objective": PWiseRObjective(n_jobs=n_jobs, **kw), "verbose": -1, "metric": "None", "num_threads": 2},
            lgb.Dataset(X, y, group=np.full(y.size // 20, 20), init_score=init),
            4,
        )
        for n_jobs in (None, 1)
    ]
    assert where_parts_run["team"] >= 4 and where_parts_run["sizes"] == {2}
    assert np.array_equal(lgb_models[0].predict(X, raw_score=True), lgb_models[1].predict(X, raw_score=True))


@pytest.mark.parametrize("booster", ["xgboost", "lightgbm"])
def test_the_estimator_runs_the_parts_on_its_boosters_team(where_parts_run, monkeypatch, booster):
    """The estimator's n_jobs is the booster's threads and so the objective's, on a machine with more
    cores (the objective took every core when the estimator trained on fewer)."""
    monkeypatch.setattr(_threads, "available_cores", lambda: 8)
    X, y, qid = _data()
    CTCVRClassifier(backend=booster, n_estimators=3, n_jobs=3).fit(X, y, group=qid)
    assert where_parts_run["team"] >= 3 and where_parts_run["sizes"] == {3}


def test_outside_training_the_pool_runs_the_parts(monkeypatch):
    monkeypatch.setattr(_threads, "ROWS_PER_THREAD", 1000)
    _, y, qid = _data()
    names: set[str] = set()
    real = _threads.run_parts

    def spy(part, n_parts):
        def named(p):
            names.add(threading.current_thread().name)
            return part(p)

        return real(named, n_parts)

    from gbdt_pwiser.kernels import passes

    monkeypatch.setattr(passes, "run_parts", spy)
    PWiseRObjective(n_jobs=2).grad_hess(np.zeros(y.size), y, qid)
    assert any(name.startswith("gbdt_pwiser") for name in names)
