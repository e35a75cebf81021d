"""A checkpoint is data: crafted files that name any class (the gadgets found in issue #22) are
refused before anything is constructed, and loading a file never changes anything on disk, runs a
string of its config, opens a connection or makes RecBole unpickle a file it names."""

import os
import pickle
import socket
import threading

import pytest
import torch

from recbole_llm4sbr.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, upgrade_checkpoint
from recbole_llm4sbr.marker import CHECKPOINT_FORMAT, MARKER_KEY
from recbole_llm4sbr.config import Config, config_from_state, config_state, recbole_argv
from recbole_llm4sbr.serve import Recommender
from serve_fixtures import checkpoint, serve_config_dict, tiny_root


class Gadget(object):
    """Pickles as ``fn(*args)``: what a crafted checkpoint makes the unpickler call."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def crafted(path, out, key, payload):
    state = load_checkpoint(path)
    state[key] = payload
    torch.save(state, out)
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return checkpoint(tmp_path_factory, "SRGNN")


def refuse(path, name):
    """Every loader refuses ``path`` naming the pickled class."""
    for load in (read_checkpoint, load_checkpoint, Recommender.from_checkpoint):
        with pytest.raises(CheckpointError, match=f"pickles '{name}'.*refused unread"):
            load(path)


def test_hyper_tuning_gadget_runs_no_code(trained, tmp_path):
    from recbole.trainer.hyper_tuning import HyperTuning

    witness = tmp_path / "pwned"
    params = tmp_path / "space.hyper"  # HyperTuning eval()s each 'name choice EXPR' line
    params.write_text(f"x choice [__import__('pathlib').Path({str(witness)!r}).touch()]\n")
    bad = crafted(trained, tmp_path / "bad.pth", "config", Gadget(HyperTuning, None, None, str(params)))
    refuse(bad, "recbole.trainer.hyper_tuning.HyperTuning")
    assert not witness.exists()


def test_side_file_writer_gadgets_create_and_delete_nothing(trained, tmp_path):
    from recbole_llm4sbr.side_file.writer import IntentSideFileWriter

    planted = tmp_path / "planted" / "deep"
    bad = crafted(trained, tmp_path / "bad.pth", "hook",
                  Gadget(IntentSideFileWriter, str(planted), {"dataset": "x"}))
    refuse(bad, "recbole_llm4sbr.side_file.writer.IntentSideFileWriter")
    assert not (tmp_path / "planted").exists()

    side = tmp_path / "side.intent"  # an existing side file: its shards must survive
    side.mkdir()
    files = {"meta.json": b'{"complete": true}', "part-00000.npz": b"shard", "catalogue.npy": b"c",
             "failures.jsonl": b"{}\n", "fill-00000.npz": b"fill"}
    for name, data in files.items():
        (side / name).write_bytes(data)
    bad = crafted(trained, tmp_path / "bad2.pth", "hook",
                  Gadget(IntentSideFileWriter, str(side), {"dataset": "x"}, True))
    refuse(bad, "recbole_llm4sbr.side_file.writer.IntentSideFileWriter")
    assert {p.name: p.read_bytes() for p in side.iterdir()} == files


def test_config_gadget_opens_no_connection(trained, tmp_path_factory, tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(3)
    port = listener.getsockname()[1]
    root = tiny_root(tmp_path_factory)
    settings = dict(serve_config_dict(root), local_rank=0, world_size=2, nproc=1, offset=0,
                    ip="127.0.0.1", port=port)
    bad = crafted(trained, tmp_path / "bad.pth", "config",
                  Gadget(Config, "SRGNN", "tiny", None, settings))
    errors = []

    def load():
        try:
            read_checkpoint(bad)
        except CheckpointError as e:
            errors.append(e)

    thread = threading.Thread(target=load, daemon=True)  # a vulnerable loader would hang here
    thread.start()
    with pytest.raises(socket.timeout):
        listener.accept()[0].close()
    listener.close()
    thread.join(10)
    assert errors and "pickles 'recbole_llm4sbr.config.Config'" in str(errors[0])
    # the plain config of a checkpoint cannot start a process group either: its distributed
    # keys are not kept (config_state) and not honoured (config_from_state)
    state = load_checkpoint(trained)
    state["config"].update(local_rank=0, world_size=2, ip="127.0.0.1", port=1)
    rebuilt = config_from_state(state["config"])
    assert rebuilt["single_spec"] is True and not torch.distributed.is_initialized()


def test_transformers_backend_gadget_is_never_constructed(trained, tmp_path, monkeypatch):
    from recbole_llm4sbr.intent.backends import transformers_backend

    built = []
    monkeypatch.setattr(transformers_backend.TransformersBackend, "__init__",
                        lambda self, *a, **k: built.append(a))
    bad = crafted(trained, tmp_path / "bad.pth", "hook",
                  Gadget(transformers_backend.TransformersBackend, {"transformers_trust_remote_code": True}))
    refuse(bad, "recbole_llm4sbr.intent.backends.transformers_backend.TransformersBackend")
    assert built == []


def test_trainer_reload_and_resume_refuse_a_crafted_file(tmp_path_factory, tmp_path):
    from recbole.trainer.hyper_tuning import HyperTuning

    from recbole_llm4sbr.experiment import build_experiment

    root = tiny_root(tmp_path_factory)
    bad = crafted(checkpoint(tmp_path_factory, "SRGNN"), tmp_path / "bad.pth", "config",
                  Gadget(HyperTuning, None, None, "x"))
    _, _, (_, _, test_data), _, trainer = build_experiment("SRGNN", "tiny", None, serve_config_dict(root))
    with pytest.raises(CheckpointError, match="refused unread"):
        trainer.resume_checkpoint(str(bad))
    with pytest.raises(CheckpointError, match="refused unread"):
        trainer.evaluate(test_data, load_best_model=True, model_file=str(bad))


def test_config_strings_are_never_evaluated(trained, tmp_path):
    witness = tmp_path / "evaluated"
    code = f"__import__('pathlib').Path({str(witness)!r}).touch()"
    state = load_checkpoint(trained)
    state["config"]["note"] = code
    state["config"]["embedding_size"] = 64
    bad = tmp_path / "strings.pth"
    torch.save(state, bad)
    ckpt, _ = read_checkpoint(bad)
    assert ckpt["config"]["note"] == code and not witness.exists()
    # the plugin's Config reads strings of a config dict as literals only, never eval()
    with recbole_argv():
        config = Config(model="SRGNN", dataset="tiny", config_dict=dict(
            serve_config_dict(os.path.dirname(state["config"]["data_path"])), note=code, topk="[5, 20]"))
    assert config["note"] == code and config["topk"] == [5, 20] and not witness.exists()


def test_a_checkpoint_cannot_make_recbole_unpickle_a_file(trained, tmp_path_factory, tmp_path):
    from recbole_llm4sbr.experiment import load_experiment

    witness = tmp_path / "unpickled"
    planted = tmp_path / "dataset.pth"
    planted.write_bytes(pickle.dumps(Gadget(open, str(witness), "w")))
    state = load_checkpoint(trained)
    state["config"].update(dataset_save_path=str(planted), dataloaders_save_path=str(planted),
                           save_dataset=True, checkpoint_dir=str(tmp_path / "elsewhere"))
    bad = tmp_path / "paths.pth"
    torch.save(state, bad)
    config, dataset, data, model, _ = load_experiment(bad)
    assert len(data[2]._dataset) > 0 and not witness.exists()
    assert config["dataset_save_path"] is None and config["save_dataset"] is False
    assert not (tmp_path / "elsewhere").exists()


def test_saved_config_round_trips_and_is_plain(trained, tmp_path_factory):
    root = tiny_root(tmp_path_factory)
    state = load_checkpoint(trained)
    assert state[MARKER_KEY]["format"] == CHECKPOINT_FORMAT == 2

    def plain(value):
        return value is None or isinstance(value, (str, int, float, bool)) or (
            isinstance(value, list) and all(map(plain, value))) or (
            isinstance(value, dict) and all(isinstance(k, str) and plain(v) for k, v in value.items()))

    assert all(plain(v) for k, v in state.items() if k not in ("state_dict", "optimizer"))
    with recbole_argv():
        original = Config(model="SRGNN", dataset="tiny", config_dict=serve_config_dict(root))
    rebuilt = config_from_state(config_state(original))
    assert config_state(rebuilt) == dict(config_state(original), checkpoint_dir=rebuilt["checkpoint_dir"])
    assert rebuilt["MODEL_TYPE"] == original["MODEL_TYPE"] and rebuilt["eval_type"] == original["eval_type"]


def test_an_old_checkpoint_is_refused_and_a_trusted_one_upgrades(trained, tmp_path_factory, tmp_path):
    root = tiny_root(tmp_path_factory)
    state = load_checkpoint(trained)
    with recbole_argv():
        state["config"] = Config(model="SRGNN", dataset="tiny", config_dict=serve_config_dict(root))
    state[MARKER_KEY]["format"] = 1
    old, recbole = tmp_path / "format1.pth", tmp_path / "recbole.pth"
    torch.save(state, old)  # the plugin's format 1: torch's default protocol
    torch.save(state, recbole, pickle_protocol=4)  # as RecBole's own trainer writes
    with pytest.raises(CheckpointError, match="format 1.*upgrade_checkpoint"):
        read_checkpoint(old)
    with pytest.raises(CheckpointError, match="pickle protocol 4.*upgrade_checkpoint"):
        read_checkpoint(recbole)
    for source in (old, recbole):
        new = upgrade_checkpoint(source, str(tmp_path / "format2.pth"))
        ckpt, marker = read_checkpoint(new)
        assert marker["format"] == 2 and ckpt["config"]["model"] == "SRGNN"
        for name, tensor in load_checkpoint(trained)["state_dict"].items():
            assert torch.equal(ckpt["state_dict"][name], tensor)


def test_paths_that_are_not_checkpoint_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="is a directory, not a .pth file"):
        read_checkpoint(tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(CheckpointError, match="is not a torch checkpoint: it is a text file"):
        read_checkpoint(text)
