"""The project as a built wheel, outside the source tree (slow): its yaml defaults and the shipped
dataset travel inside the package, data_path is relative to the working directory, and the
console script trains LLM4SBR_SRGNN for one epoch from an empty folder."""

import json
import os
import re
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the source tree

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The wheel built from the source tree, installed (without dependencies: those of this
    environment serve) into a folder of its own."""
    out = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(pip + ["wheel", REPO_ROOT, "--no-deps", "-q", "-w", str(out / "dist")],
                   check=True, capture_output=True)
    (wheel,) = (out / "dist").iterdir()
    subprocess.run(pip + ["install", "-q", "--no-deps", "--target", str(out / "site"), str(wheel)],
                   check=True, capture_output=True)
    return out / "site"


def run(site, cwd, *args):
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=1500)


def test_wheel_carries_its_yaml_and_data(site, tmp_path):
    proc = run(site, tmp_path, "-c", "import recbole_llm4sbr.paths as u, recbole_llm4sbr as r; "
               "print(r.__file__); print(u.PROPERTIES_DIR); print(u.BUNDLED_DATA_DIR)")
    package, properties, bundled = proc.stdout.split()
    assert package.startswith(str(site)) and properties.startswith(str(site))
    assert os.path.isfile(os.path.join(properties, "intent_model.yaml"))
    assert os.path.isfile(os.path.join(properties, "model", "LLM4SBR_SRGNN.yaml"))
    assert os.path.isfile(os.path.join(bundled, "ml-latest-small", "ml-latest-small.inter"))


def test_console_script_trains_one_epoch_from_an_empty_folder(site, tmp_path):
    script = site / "bin" / "recbole-llm4sbr"
    assert script.is_file()
    proc = run(site, tmp_path, str(script), "--model=LLM4SBR_SRGNN", "--epochs=1",
               "--show_progress=False", "--intent_show_progress=False")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {"dataset", "log", "saved"} <= set(os.listdir(tmp_path))
    assert os.path.isfile(tmp_path / "dataset" / "ml-100k" / "ml-100k.intent" / "meta.json")
    result = json.loads(re.search(r"^test result: (\{.*\})$", proc.stdout, re.M).group(1).replace("'", '"'))
    assert result["recall@20"] > 3 * 20 / 1682
    # an unknown dataset is named, with what exists, before RecBole's own checks
    proc = run(site, tmp_path, str(script), "--model=SRGNN", "--dataset=nope")
    assert proc.returncode == 2 and "Unknown dataset [nope]" in proc.stderr
    assert "ml-100k" in proc.stderr
