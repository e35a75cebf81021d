"""Hyper-parameter search (Ray Tune and hyperopt) and the benchmark harness, on a tiny dataset."""

import csv
import json
import os
import sys

import pytest
import yaml

from conftest import tiny_config_dict
from recbole_llm4sbr.config import parse_overrides
from recbole_llm4sbr.hyper import hyperopt_search, read_params_file, trial_config_dict
from recbole_llm4sbr.results import FIELDS
from test_run import build_side_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def import_script(name="compare"):
    """A script of ``benchmarks/`` (not part of the package)."""
    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    try:
        return __import__(name)
    finally:
        sys.path.pop(0)


import_compare = import_script


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_params(path, text):
    path.write_text(text)
    return str(path)


def test_params_files_parse_and_r_selects_its_own_side_file():
    from recbole_llm4sbr.config import Config
    from recbole_llm4sbr.model import __all__ as plugin_models

    backbones = [m[len("LLM4SBR_"):] for m in plugin_models if m.startswith("LLM4SBR_")]
    assert len(backbones) == 6
    for x in backbones:  # every backbone has a space, and LLM4SBR_X searches X's space and more
        base = read_params_file(os.path.join(REPO, "hyper", f"{x}.hyper"))
        ours = read_params_file(os.path.join(REPO, "hyper", f"LLM4SBR_{x}.hyper"))
        assert base and ours[:len(base)] == base, x
        assert {name for name, _, _ in ours[len(base):]} >= {"intent_tau"}, x
        assert {kind for _, kind, _ in ours} <= {"choice", "uniform", "quniform", "loguniform"}
        for model in (x, f"LLM4SBR_{x}"):  # every searched key is one the model's config has
            keys = Config(model=model, dataset="ml-100k").final_config_dict
            missing = [name for name, _, _ in read_params_file(
                os.path.join(REPO, "hyper", f"{model}.hyper")) if name not in keys]
            assert missing == [], (model, missing)
    names = [p[0] for p in read_params_file(os.path.join(REPO, "hyper", "LLM4SBR_SRGNN.hyper"))]
    assert {"intent_tau", "intent_r", "learning_rate", "embedding_size"} <= set(names)
    base = {"model": "LLM4SBR_SRGNN", "dataset": "ml-100k"}
    assert trial_config_dict(base, {"intent_r": 3.0})["intent_file"] == "ml-100k.r3.intent"
    aliased = trial_config_dict(base, {"intent_localization_r": 5})
    assert aliased["intent_r"] == 5 and aliased["intent_file"] == "ml-100k.r5.intent"
    assert "intent_file" not in trial_config_dict(base, {"intent_tau": 0.1})
    assert parse_overrides(["--epochs=3", "--topk=[10,20]", "--x=abc", "--a=TRUE", "--lr=1e-3",
                            "--d={'k': 1}", "--s=os.system('x')"]) == {
        "epochs": 3, "topk": [10, 20], "x": "abc", "a": True, "lr": 1e-3, "d": {"k": 1},
        "s": "os.system('x')"}  # literals only: nothing is evaluated
    with pytest.raises(ValueError, match="epochs"):
        parse_overrides(["epochs=3"])


def test_trial_row_keeps_what_a_stopped_trial_reported():
    from types import SimpleNamespace

    from recbole_llm4sbr.hyper import trial_row

    record = {"model": "STAMP", "dataset": "d", "best_valid_score": 0.3,
              "best_valid_result": {"mrr@20": 0.3}, "test_result": {"mrr@20": 0.25},
              "epochs_trained": 7}
    finished = SimpleNamespace(
        trial_id="t0", status="TERMINATED", config={"learning_rate": 0.01},
        metric_analysis={"mrr@20": {"max": 0.3}},
        last_result={"record": json.dumps(record), "training_iteration": 8, "epoch": 7})
    stopped = SimpleNamespace(  # ASHA stopped it after 4 evaluations: no summary report
        trial_id="t1", status="TERMINATED", config={"learning_rate": 0.001},
        metric_analysis={"mrr@20": {"max": 0.12, "min": 0.05}},
        last_result={"mrr@20": 0.1, "epoch": 4, "training_iteration": 4})
    failed = SimpleNamespace(trial_id="t2", status="ERROR", config={"learning_rate": 0.1},
                             metric_analysis={}, last_result={})
    rows = [trial_row(t, "STAMP", "d", "mrr@20", "max") for t in (finished, stopped, failed)]
    assert rows[0]["test_mrr@20"] == 0.25 and rows[0]["epochs_trained"] == 7
    assert rows[0]["status"] == "TERMINATED" and rows[0]["learning_rate"] == 0.01
    assert rows[1]["status"] == "TERMINATED (stopped early)"
    assert rows[1]["best_valid_score"] == rows[1]["valid_mrr@20"] == 0.12
    assert rows[1]["epochs_trained"] == 4 and rows[1]["reports"] == 4
    assert "test_mrr@20" not in rows[1]
    assert rows[2]["status"] == "ERROR" and rows[2]["best_valid_score"] is None
    assert "valid_mrr@20" not in rows[2] and "epochs_trained" not in rows[2]


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize("model", ["GRU4Rec", "LLM4SBR_SRGNN"])
def test_ray_search_two_trials(local_ray, tiny_root, tmp_path, model):
    from recbole_llm4sbr.hyper import ray_search

    if model.startswith("LLM4SBR"):
        build_side_file(tiny_root)
        params = write_params(tmp_path / "p.hyper", "intent_tau choice [0.0,0.5]\n")
    else:
        params = write_params(tmp_path / "p.hyper", "learning_rate choice [0.001,0.01]\n")
    out = tmp_path / "ray.csv"
    rows, best = ray_search(
        model, "tiny", params, config_dict=tiny_config_dict(tiny_root, epochs=2, step=1),
        output_file=str(out), num_samples=2, cpus_per_trial=1, gpus_per_trial=0,
        grace_period=1, storage_path=str(tmp_path / "ray"), verbose=0)
    table = read_csv(out)
    assert len(table) == 2
    # two per-epoch reports (+ the final summary) reached Ray
    assert max(int(r["reports"]) for r in table) >= 2
    finished = [r for r in table if r["test_mrr@20"]]
    assert finished, table
    for r in finished:  # the final report: best valid (selection) and test (record only)
        assert float(r["best_valid_score"]) == pytest.approx(float(r["valid_mrr@20"]))
        assert r["model"] == model and int(r["epochs_trained"]) >= 1 and r["valid_scores"]
    assert best["best_valid_score"] == max(float(r["best_valid_score"]) for r in table)
    # each trial saved its checkpoints in its own trial directory
    saved = [d for d, _, files in os.walk(tmp_path / "ray") if d.endswith("saved") and files]
    for r in finished:
        assert sum(f"_{r['trial']}_" in d for d in saved) == 1, saved


def test_hyperopt_exhaustive(tiny_root, tmp_path):
    params = write_params(tmp_path / "p.hyper", "learning_rate choice [0.001,0.01]\n")
    out = tmp_path / "hyperopt.csv"
    rows, best = hyperopt_search(
        "GRU4Rec", "tiny", params, config_dict=tiny_config_dict(tiny_root),
        output_file=str(out), algo="exhaustive")
    table = read_csv(out)
    assert len(table) == 2
    assert {float(r["learning_rate"]) for r in table} == {0.001, 0.01}
    assert {"best_valid_score", "valid_mrr@20", "test_mrr@20", "seconds_per_epoch"} <= set(table[0])
    assert best["best_valid_score"] == max(float(r["best_valid_score"]) for r in table)
    # the one results format: every record field (flattened) is a column
    assert {"model", "seed", "overrides", "epochs_trained", "best_epoch", "valid_scores"} <= set(table[0])
    assert all(json.loads(r["overrides"])["learning_rate"] == float(r["learning_rate"]) for r in table)


def test_compare_two_models_two_seeds(tiny_root, tmp_path, capsys):
    compare = import_compare()
    config = tiny_config_dict(tiny_root, topk=[10, 20])
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(config))
    out = tmp_path / "bench"
    argv = ["--dataset", "tiny", "--models", "GRU4Rec,STAMP", "--seeds", "2",
            "--out", str(out), "--config_files", str(config_file), "--epochs=1"]
    stopped = compare.main(argv + ["--deadline", "0"])  # nothing starts, nothing is written
    assert len(stopped["stopped"]) == 4 and not os.listdir(out / "runs")
    first = compare.main(argv + ["--jobs", "2"])
    assert len(first["ran"]) == 4 and not first["failed"]
    records = [json.loads(p.read_text()) for p in (out / "runs").iterdir()]
    assert all(r["epochs_trained"] == 1 and r["best_epoch"] == 0 for r in records)
    assert all(set(FIELDS) <= set(r) for r in records)  # the format hyper.py's CSV rows flatten
    table = (out / "table.md").read_text()
    assert "| GRU4Rec |" in table and "| STAMP |" in table
    assert table.count("±") >= 2 * 8  # recall/mrr/ndcg @10/@20, s/epoch, peak memory
    assert (out / "chart.png").stat().st_size > 0
    assert "Recall@20" in capsys.readouterr().out
    second = compare.main(argv)
    assert second["ran"] == [] and len(second["skipped"]) == 4


def test_compare_pair_table_checks_the_targets():
    report = import_script("report")

    def record(model, seed, recall, mrr, seconds):
        return {"model": model, "seed": seed, "seconds_per_epoch": seconds, "peak_rss_mb": 1.0,
                "test_result": {"recall@20": recall, "mrr@20": mrr}}

    records = [record("NARM", 1, 0.20, 0.050, 10.0), record("NARM", 2, 0.22, 0.060, 10.0),
               record("LLM4SBR_NARM", 1, 0.24, 0.060, 12.0), record("LLM4SBR_NARM", 2, 0.22, 0.056, 12.0),
               record("STAMP", 1, 0.15, 0.040, 4.0), record("LLM4SBR_STAMP", 1, 0.16, 0.030, 6.0),
               record("GRU4Rec", 1, 0.1, 0.02, 1.0)]
    summary = report.summarise(records, ["NARM", "LLM4SBR_NARM", "STAMP", "LLM4SBR_STAMP", "GRU4Rec"])
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in
            report.pair_table(summary).splitlines()[2:]}
    assert set(rows) == {"LLM4SBR_NARM vs NARM", "LLM4SBR_STAMP vs STAMP"}  # no pair for GRU4Rec
    narm = rows["LLM4SBR_NARM vs NARM"]
    from scipy.stats import ttest_rel  # paired by seed: (0.24, 0.20) and (0.22, 0.22)

    p = ttest_rel([0.24, 0.22], [0.20, 0.22]).pvalue
    assert narm[1] == f"0.2300 vs 0.2100 (+9.5%, p {p:.3f})" and narm[3] == "1.20x"
    assert narm[4:] == ["yes", "yes |"]
    stamp = rows["LLM4SBR_STAMP vs STAMP"]  # better recall, worse MRR, 1.5x slower
    assert stamp[2].endswith("(-25.0%, p n/a)") and stamp[4:] == ["no", "no |"]  # one seed
    assert report.pair_table({"NARM": summary["NARM"]}) == ""


def test_compare_tests_table_has_both_paired_tests():
    report = import_script("report")
    records = [{"model": m, "seed": s, "seconds_per_epoch": 1.0, "peak_rss_mb": 1.0,
                "test_result": {"recall@20": r, "mrr@20": 0.05}}
               for m, rs in (("NARM", (0.20, 0.21, 0.22)), ("LLM4SBR_NARM", (0.23, 0.22, 0.26)))
               for s, r in zip((1, 2, 3), rs)]
    summary = report.summarise(records, ["NARM", "LLM4SBR_NARM"])
    lines = report.tests_table(summary).splitlines()
    from scipy.stats import ttest_rel, wilcoxon

    t = ttest_rel([0.23, 0.22, 0.26], [0.20, 0.21, 0.22]).pvalue
    w = wilcoxon([0.03, 0.01, 0.04]).pvalue
    recall = next(line for line in lines if "Recall@20" in line)
    assert recall == f"| LLM4SBR_NARM vs NARM | Recall@20 | +0.0267 | {t:.3f} | {w:.3f} | 3/3 |"
    mrr = next(line for line in lines if "MRR@20" in line)  # equal on every seed: no test
    assert mrr.endswith("| +0.0000 | n/a | n/a | 0/3 |")


@pytest.mark.slow
def test_tuned_benchmark_searches_then_runs_the_best_configuration(local_ray, tiny_root, tmp_path):
    tuned = import_script("tuned")
    build_side_file(tiny_root)
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(tiny_config_dict(tiny_root, epochs=2, topk=[10, 20])))
    out = tmp_path / "tuned"
    argv = ["--dataset", "tiny", "--models", "STAMP,LLM4SBR_STAMP", "--trials", "2", "--seeds", "2",
            "--grace_period", "1", "--out", str(out), "--config_files", str(config_file)]
    status = tuned.main(argv)
    assert len(status["ran"]) == 4 and not status["failed"]
    for model in ("STAMP", "LLM4SBR_STAMP"):
        search = read_csv(out / "search" / f"{model}.csv")
        assert len(search) == 2
        best = max((r for r in search if r["best_valid_score"]), key=lambda r: float(r["best_valid_score"]))
        assert status["chosen"][model] == json.loads(best["params"])
        for seed in (2020, 2021):  # the benchmark runs used the search's best parameters
            record = json.loads((out / "runs" / f"{model}-seed{seed}.json").read_text())
            assert record["seed"] == seed and set(FIELDS) <= set(record)
            for key, value in status["chosen"][model].items():
                assert parse_overrides([f"--{key}={record['overrides'][key]}"])[key] == value
    table = (out / "table.md").read_text()
    assert "LLM4SBR_STAMP vs STAMP" in table and "Wilcoxon" in table and "learning_rate" in table
    again = tuned.main(argv)  # everything is on disk: nothing is searched or run again
    assert again["ran"] == [] and again["chosen"] == status["chosen"]


@pytest.mark.slow
def test_ablation_runs_each_variant_against_the_full_model(tiny_root, tmp_path):
    ablation = import_script("ablation")
    build_side_file(tiny_root)
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(tiny_config_dict(tiny_root, topk=[10, 20])))
    out = tmp_path / "ablation"
    variants = ["full", "backbone", "tau0", "long_only"]
    status = ablation.main(["--dataset", "tiny", "--backbone", "STAMP", "--variants",
                            ",".join(variants), "--seeds", "2", "--out", str(out),
                            "--config_files", str(config_file), "--jobs", "2"])
    assert len(status["ran"]) == 8 and not status["failed"]
    records = {(r["label"], r["seed"]): r for r in
               (json.loads(p.read_text()) for p in (out / "runs").iterdir())}
    assert set(records) == {(v, s) for v in variants for s in (2020, 2021)}
    assert records[("backbone", 2020)]["model"] == "STAMP"
    assert records[("tau0", 2020)]["model"] == "LLM4SBR_STAMP"
    assert parse_overrides([f"--t={records[('tau0', 2021)]['overrides']['intent_tau']}"])["t"] == 0.0
    assert records[("long_only", 2020)]["overrides"]["intent_views"] == "long"
    table = (out / "table.md").read_text()
    for name in variants:
        assert f"| {name} |" in table
    assert table.count("p ") >= 2 * 3  # Recall@20 and MRR@20 of each variant against full
    with pytest.raises(SystemExit):
        ablation.main(["--variants", "full,nope"])


@pytest.mark.slow
def test_ray_search_resumes_a_finished_experiment_without_new_trials(local_ray, tiny_root, tmp_path):
    from recbole_llm4sbr.hyper import ray_search

    params = write_params(tmp_path / "p.hyper", "learning_rate choice [0.001,0.01]\n")
    common = dict(config_dict=tiny_config_dict(tiny_root), num_samples=2, grace_period=1,
                  storage_path=str(tmp_path / "ray"), name="resumed", verbose=0, resume="AUTO")
    rows, _ = ray_search("GRU4Rec", "tiny", params, **common)
    again, _ = ray_search("GRU4Rec", "tiny", params, **common)
    scores = {r["trial"]: r["best_valid_score"] for r in rows}
    assert len(scores) == 2 and {r["trial"]: r["best_valid_score"] for r in again} == scores
    trial_dirs = [d for d in os.listdir(tmp_path / "ray" / "resumed") if d.startswith("ray_trainable")]
    assert len(trial_dirs) == 2  # nothing was run a second time


def test_compare_runner_skips_a_run_another_process_finished(tmp_path):
    compare = import_compare()
    done = tmp_path / "STAMP-seed1.json"
    done.write_text("{}")
    spec = dict(model="STAMP", dataset="nowhere", seed=1, json=str(done), config_files=None,
                overrides={})
    status = compare.run_children([spec])  # would fail if launched: the dataset does not exist
    assert status["skipped"] == [("STAMP", 1)] and status["ran"] == [] and status["failed"] == []
