"""benchmarks/queue_runs.py: several comparisons as one queue of runs, pair by pair."""

import json
import os
import tarfile

import yaml

from conftest import tiny_config_dict
from test_hyper import import_script


def snapshot_names(path):
    with tarfile.open(path) as tar:
        return sorted(n for n in tar.getnames() if n.endswith(".json"))


def test_plan_orders_a_comparison_seed_by_seed(tmp_path):
    compare = import_script("compare")
    out = str(tmp_path / "cmp")
    _, by_model = compare.plan("tiny", ["STAMP", "LLM4SBR_STAMP"], [1, 2], out)
    paths, by_seed = compare.plan("tiny", ["STAMP", "LLM4SBR_STAMP"], [1, 2], out, by_seed=True)
    assert [(s["model"], s["seed"]) for s in by_model] == [
        ("STAMP", 1), ("STAMP", 2), ("LLM4SBR_STAMP", 1), ("LLM4SBR_STAMP", 2)]
    assert [(s["model"], s["seed"]) for s in by_seed] == [  # a deadline leaves whole pairs
        ("STAMP", 1), ("LLM4SBR_STAMP", 1), ("STAMP", 2), ("LLM4SBR_STAMP", 2)]
    assert paths[("STAMP", 2)] == os.path.join(out, "runs", "STAMP-seed2.json")
    assert all(s["overrides"]["checkpoint_dir"] == os.path.join(out, "saved") for s in by_seed)


def test_queue_runs_several_comparisons_and_snapshots_their_records(tiny_root, tmp_path, capsys):
    queue_runs = import_script("queue_runs")
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(tiny_config_dict(tiny_root, topk=[10, 20])))
    a, b, snap = tmp_path / "a", tmp_path / "b", str(tmp_path / "snap" / "runs.tgz")
    argv = ["--comparison", f"tiny GRU4Rec,STAMP 1 {a}", "--comparison", f"tiny STAMP 2 {b}",
            "--config_files", str(config_file), "--snapshot", snap, "--epochs=1"]
    stopped = queue_runs.main(argv + ["--deadline", "0"])  # nothing starts, nothing is written
    assert len(stopped["stopped"]) == 3 and stopped["ran"] == []
    assert snapshot_names(snap) == []
    first = queue_runs.main(argv + ["--jobs", "2"])
    assert sorted(first["ran"]) == [("GRU4Rec", 1), ("STAMP", 1), ("STAMP", 2)] and not first["failed"]
    assert sorted(os.listdir(a / "runs")) == ["GRU4Rec-seed1.json", "STAMP-seed1.json"]
    assert os.listdir(b / "runs") == ["STAMP-seed2.json"]
    record = json.loads((b / "runs" / "STAMP-seed2.json").read_text())
    assert record["seed"] == 2 and record["epochs_trained"] == 1 and record["test_result"]
    assert snapshot_names(snap) == ["a/runs/GRU4Rec-seed1.json", "a/runs/STAMP-seed1.json",
                                    "b/runs/STAMP-seed2.json"]
    again = queue_runs.main(argv)
    assert again["ran"] == [] and len(again["skipped"]) == 3
    assert "[queue] 0 runs, 3 skipped" in capsys.readouterr().out


def test_run_children_gives_up_when_every_run_fails(tmp_path):
    compare = import_script("compare")
    specs = [dict(model="STAMP", dataset="nowhere", seed=s, json=str(tmp_path / f"STAMP-seed{s}.json"),
                  config_files=None, overrides={"data_path": str(tmp_path)}) for s in (1, 2, 3)]
    status = compare.run_children(specs, jobs=1, max_failures=2)
    assert status["failed"] == [("STAMP", 1), ("STAMP", 2)] and status["ran"] == []
    assert status["stopped"] == [("STAMP", 3)]  # never started: the environment is broken
