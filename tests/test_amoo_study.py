"""madam.amoo_study: the stored notebook-preset record is what the code computes (a slice of it is
recomputed here), it says which code made it, and the statistics behind its verdicts are right."""
import importlib.util
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

import madam
from madam import amoo_study

ROOT = Path(__file__).resolve().parent.parent
STORED = ROOT / "benchmarks" / "results" / "amoo_notebook_preset.json"


@pytest.fixture(scope="module")
def stored():
    return json.loads(STORED.read_text())


@pytest.fixture()
def one_thread():
    """One thread in every BLAS pool and in madam's loops, as the study runs (restored after)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = madam.get_num_threads()
    madam.set_num_threads(1)
    try:
        with threadpoolctl.threadpool_limits(1):
            yield
    finally:
        madam.set_num_threads(before)


def test_stored_record_has_provenance_and_the_notebook_config(stored):
    prov = stored["provenance"]
    assert prov["madam_version"] == madam.__version__
    assert re.fullmatch(r"[0-9a-f]{64}", prov["core_source_hash"])
    assert stored["preset"] == "notebook"
    cfg = {k: v for k, v in stored["config"].items() if k != "problem_seed"}
    assert cfg == amoo_study.PRESETS["notebook"]
    assert stored["config"]["problem_seed"] == amoo_study.PROBLEM_SEED
    # tuning and evaluation seeds are disjoint, and every chosen lr is the best tuning score
    assert not set(stored["eval_seeds"]) & set(stored["config"]["tuning_seeds"])
    for c in stored["chosen"]:
        rows = [r for r in stored["tuning"] if (r["sigma"], r["method"], r["optimizer"])
                == (c["sigma"], c["method"], c["optimizer"])]
        assert c["lr"] == min(rows, key=lambda r: r["score"])["lr"]


def _stored_eval(stored, sigma, method, optimizer):
    (row,) = [r for r in stored["evaluation"]
              if (r["sigma"], r["method"], r["optimizer"]) == (sigma, method, optimizer)]
    return row


@pytest.mark.parametrize("method, optimizer, seeds", [("EW", "SGD", [0, 1]),
                                                     ("CAMOO", "Adam", [3])])
def test_recomputed_evaluation_runs_match_the_stored_ones(stored, one_thread, method, optimizer,
                                                          seeds):
    cfg = stored["config"]
    row = _stored_eval(stored, 0.1, method, optimizer)
    probs = amoo_study.make_problems([0.1], cfg["hidden"], cfg["batch"], cfg["problem_seed"])
    _, rows = amoo_study.evaluate(probs, {(0.1, method, optimizer): row["lr"]}, seeds,
                                  cfg["steps"], cfg["probes"], cfg["records"])
    (got,) = rows
    want = [row["finals"][row["seeds"].index(s)] for s in seeds]
    np.testing.assert_allclose(got["finals"], want, rtol=1e-9, atol=0)


def test_evaluate_runs_only_the_chosen_cells():
    probs = amoo_study.make_problems([1.0, 0.1], hidden=4, batch=8)
    chosen = {(1.0, "EW", "SGD"): 0.1, (1.0, "CAMOO", "Adam"): 1e-2, (0.1, "EW", "SGD"): 0.3,
              (0.1, "PAMOO", "Adam"): None}
    steps, rows = amoo_study.evaluate(probs, chosen, [0, 1], steps=6, probes=2, records=3)
    assert steps == [0, 3, 6]
    assert [(r["sigma"], r["method"], r["optimizer"], r["lr"]) for r in rows] == \
        [k + (lr,) for k, lr in chosen.items() if lr is not None]
    for r in rows:
        assert len(r["finals"]) == 2 and np.all(np.isfinite(r["finals"]))
        assert r["finals"] == [d[-1] for d in r["distance"]]


def test_recomputed_tuning_runs_match_the_stored_ones(stored, one_thread):
    cfg = stored["config"]
    (row,) = [r for r in stored["tuning"] if (r["sigma"], r["method"], r["optimizer"], r["lr"])
              == (1.0, "PAMOO", "Adam", 0.01)]
    probs = amoo_study.make_problems([1.0], cfg["hidden"], cfg["batch"], cfg["problem_seed"])
    rows, chosen = amoo_study.tune(probs, {("PAMOO", "Adam"): [0.01]}, cfg["tuning_seeds"],
                                   cfg["steps"], cfg["probes"])
    np.testing.assert_allclose(rows[0]["finals"], row["finals"], rtol=1e-9, atol=0)
    assert chosen == {(1.0, "PAMOO", "Adam"): 0.01}


def test_stored_paired_tests_follow_from_the_stored_runs(stored):
    for t in stored["paired"]:
        a = _stored_eval(stored, t["sigma"], t["method"], t["optimizer"])
        base_method, base_opt = t["baseline"].split("-")
        b = _stored_eval(stored, t["sigma"], base_method, base_opt)
        again = amoo_study.paired(a["finals"], b["finals"])
        for key in ("mean", "lo", "hi"):
            assert again[key] == pytest.approx(t[key], rel=1e-12, abs=1e-15)
        assert (again["better"], again["verdict"]) == (t["better"], t["verdict"])


def test_t_quantile_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in range(1, 31):
        for p in (0.9, 0.975, 0.995):
            assert amoo_study.t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-10)
    assert amoo_study.t_quantile(0.5, 3) == 0.0
    with pytest.raises(ValueError):
        amoo_study.t_quantile(0.975, 0)


def test_paired_verdicts_and_wording():
    better = amoo_study.paired([1.0, 2.0, 3.0, 4.0], [1.5, 2.4, 3.6, 4.5])
    assert better["verdict"] == "better" and better["better"] == 4 and better["hi"] < 0
    half = 3.182446305284263 * np.std([-0.5, -0.4, -0.6, -0.5], ddof=1) / 2
    assert better["lo"] == pytest.approx(-0.5 - half) and better["hi"] == pytest.approx(-0.5 + half)
    mixed = amoo_study.paired([1.0, 2.0, 3.0, 4.0, 5.0], [1.1, 1.9, 3.2, 3.9, 5.1])
    assert mixed["verdict"] == "no significant difference" and mixed["better"] == 3
    assert amoo_study.verdict_text(mixed) == "no significant difference (better on 3 of 5 seeds)"
    worse = amoo_study.paired([2.0, 3.0, 4.0], [1.0, 1.9, 3.1])
    assert worse["verdict"] == "worse"
    assert amoo_study.verdict_text(worse).startswith("worse than EW")
    diverged = amoo_study.paired([1.0, math.nan], [1.0, 2.0])
    assert diverged["verdict"].startswith("not testable")


def test_hvp_calls_are_counted():
    p = amoo_study.make_problems([0.1], hidden=4, batch=8)[0.1]
    rows = {r["method"]: r for r in amoo_study.extra_compute(p, probes=3, steps=300,
                                                             count_steps=4)}
    assert rows["CAMOO"]["counted_calls"] == 3 * 5        # 4 steps + the final record's solve
    assert rows["CAMOO"]["hvp_calls_per_step"] == 3
    assert rows["CAMOO"]["objective_hvps_per_step"] == 3 * p.n_obj
    assert rows["CAMOO"]["hvp_calls_total"] == 900
    assert rows["EW"]["hvp_calls_total"] == rows["PAMOO"]["hvp_calls_total"] == 0


def test_the_benchmark_script_uses_the_study_module():
    spec = importlib.util.spec_from_file_location("amoo_full", ROOT / "benchmarks" / "amoo_full.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.PRESETS is amoo_study.PRESETS and mod.amoo_study is amoo_study
