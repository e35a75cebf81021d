"""The README's main command on the real default dataset, from an empty data folder (slow).

What a new user runs on a fresh machine: ml-100k is copied from the installed recbole package,
the default side file is built with the item-text backend and the real MiniLM encoder, then
LLM4SBR_SRGNN trains and is evaluated; the RecBole baseline runs on the same split.
"""

import json
import os
import re
import subprocess
import sys

import pytest

from recbole_llm4sbr.side_file.format import read_meta
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the source tree

pytestmark = pytest.mark.slow

N_ITEMS = 1682  # ml-100k's catalogue


def run_main(tmp_path, *args):
    cmd = [sys.executable, "run_recbole_llm4sbr.py", f"--data_path={tmp_path}",
           f"--checkpoint_dir={tmp_path / 'saved'}", "--epochs=1", "--show_progress=False",
           "--intent_show_progress=False", *args]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    match = re.search(r"^test result: (\{.*\})$", proc.stdout, re.MULTILINE)
    assert match, proc.stdout[-2000:]
    return json.loads(match.group(1).replace("'", '"')), proc


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def test_main_command_builds_the_side_file_trains_and_evaluates(data_root):
    result, _ = run_main(data_root, "--model=LLM4SBR_SRGNN")
    folder = data_root / "ml-100k"
    assert {f"ml-100k.{s}" for s in ("inter", "item", "user")} <= set(os.listdir(folder))
    meta = read_meta(str(folder / "ml-100k.intent"))
    assert meta["complete"] and meta["n_items"] == N_ITEMS and meta["dim"] == 384
    assert meta["provenance"]["backend"] == "item-text"
    assert meta["summary"]["keys"] == 2 * meta["summary"]["prefixes"] > 190_000
    # one epoch already ranks far better than chance (20 / 1682 items at Recall@20)
    assert result["recall@20"] > 3 * 20 / N_ITEMS
    assert 0 < result["mrr@20"] <= result["recall@20"]


def test_baseline_runs_on_the_same_split_without_a_side_file(data_root):
    result, _ = run_main(data_root, "--model=SRGNN")
    assert set(result) >= {f"{m}@{k}" for m in ("recall", "mrr", "ndcg") for k in (5, 10, 20)}
    assert result["recall@20"] > 3 * 20 / N_ITEMS
