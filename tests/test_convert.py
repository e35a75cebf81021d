# -*- coding: utf-8 -*-
"""Dataset converters: formats, sessions, filters, splits, atomic output, errors, RecBole load."""

import gzip
import json
import os
import sys

import numpy as np
import pandas as pd
import pytest

from recbole_llm4sbr.convert import ConversionError
from recbole_llm4sbr.convert.__main__ import main
from recbole_llm4sbr.convert import sessionize as S
from recbole_llm4sbr.convert import writer as W

GENRES = ["Animation|Children's|Comedy", "Film-Noir|Thriller", "Drama", "Action|Sci-Fi",
          "Comedy|Romance", "Horror", "Western", "Musical|War"]


# ----------------------------------------------------------------------------- fixtures
def synthetic_clicks(n_users=12, n_items=8, seed=0):
    """Users with sessions of lengths 2..6 separated by > 10 minute gaps, all items frequent."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        t = 978300000 + u * 7
        for s in range(3):
            for _ in range(2 + (u + s) % 5):
                rows.append((u, int(rng.integers(1, n_items + 1)), t))
                t += 60
            t += 3600
    return rows


def write_ml1m(folder, rows, n_items=8, sep="::"):
    folder.mkdir(parents=True, exist_ok=True)
    movies = [f"{i}{sep}{'Café Society' if i == 1 else f'Movie {i}'} (199{i % 10}){sep}"
              f"{GENRES[(i - 1) % len(GENRES)]}" for i in range(1, n_items + 1)]
    (folder / "movies.dat").write_bytes("\n".join(movies).encode("iso-8859-1") + b"\n")
    ratings = "".join(f"{u}{sep}{i}{sep}4{sep}{t}\n" for u, i, t in rows)
    with gzip.open(folder / "ratings.dat.gz", "wt", encoding="iso-8859-1") as f:
        f.write(ratings)
    return folder


def write_mlcsv(folder, rows, n_items=8):
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["userId", "movieId", "timestamp"]).assign(rating=3.5)[
        ["userId", "movieId", "rating", "timestamp"]].to_csv(folder / "ratings.csv", index=False)
    pd.DataFrame({"movieId": range(1, n_items + 1),
                  "title": [f'"Quoted, Title" {i} (2001)' if i == 2 else f"Film {i} (2001)"
                            for i in range(1, n_items + 1)],
                  "genres": [GENRES[(i - 1) % len(GENRES)].replace("'", "")
                             for i in range(1, n_items + 1)]}).to_csv(folder / "movies.csv",
                                                                      index=False)
    pd.DataFrame({"userId": [1, 2, 3, 1], "movieId": [1, 1, 1, 3],
                  "tag": ["pixar", "Highly quotable", "Pixar", "dark"],
                  "timestamp": [1, 2, 3, 4]}).to_csv(folder / "tags.csv", index=False)
    return folder


def convert(*argv):
    return main([str(a) for a in argv])


def read_atomic(path):
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


# ----------------------------------------------------------------------------- MovieLens
def test_ml1m_dat_latin1_and_outputs(tmp_path, capsys):
    src = write_ml1m(tmp_path / "raw", synthetic_clicks())
    (src / "README.txt").write_text("licence")
    out = tmp_path / "ds" / "ml1"
    assert convert("movielens", "--src", src, "--out", out, "--min-item-count", 1) == 0
    assert "avg session length" in capsys.readouterr().out
    assert sorted(os.listdir(out)) == ["README.txt", "ml1.inter", "ml1.item", "ml1.yaml",
                                      "stats.json", "stats.txt"]
    inter = read_atomic(out / "ml1.inter")
    assert list(inter.columns) == ["session_id:token", "item_id:token", "timestamp:float"]
    assert inter["session_id:token"].str.fullmatch(r"u\d+_s\d").all()
    item = read_atomic(out / "ml1.item")
    assert list(item.columns) == ["item_id:token", "title:token_seq", "genres:token_seq"]
    row = item.set_index("item_id:token").loc["1"]
    assert row["title:token_seq"] == "Café Society (1991)"
    assert row["genres:token_seq"] == "Animation Children's Comedy"
    assert item.set_index("item_id:token").loc["2", "genres:token_seq"] == "Film-Noir Thriller"
    assert set(inter["item_id:token"]) <= set(item["item_id:token"])
    stats = json.loads((out / "stats.json").read_text())
    assert stats["sessions"] == 36 and stats["clicks"] == len(inter)
    txt = (out / "stats.txt").read_text()  # the command and every option, as docs promise
    assert f"python -m recbole_llm4sbr.convert movielens --src {src}" in txt
    assert "min_item_count=1" in txt and "gap_minutes=10.0" in txt


def test_mlcsv_tags_and_quotes(tmp_path):
    src = write_mlcsv(tmp_path / "raw", synthetic_clicks())
    out = tmp_path / "mlc"
    assert convert("movielens", "--src", src, "--out", out, "--min-item-count", 1,
                   "--quiet") == 0
    item = read_atomic(out / "mlc.item").set_index("item_id:token")
    assert item.loc["1", "tags:token_seq"] == "pixar, Highly quotable"  # case-insensitive dedup
    assert item.loc["3", "tags:token_seq"] == "dark" and item.loc["4", "tags:token_seq"] == ""
    assert item.loc["2", "title:token_seq"] == '"Quoted, Title" 2 (2001)'  # CSV quoting
    assert "intent_text_fields: [title, genres]" in (out / "mlc.yaml").read_text()


def test_written_yaml_lets_early_stopping_end_training(tmp_path):
    """Converted datasets train to convergence: RecBole's 300-epoch cap, patience 10 (issue #24)."""
    import yaml

    src = write_mlcsv(tmp_path / "raw", synthetic_clicks())
    out = tmp_path / "mlc"
    assert convert("movielens", "--src", src, "--out", out, "--min-item-count", 1, "--quiet") == 0
    written = yaml.safe_load((out / "mlc.yaml").read_text())
    assert (written["epochs"], written["stopping_step"], written["valid_metric"]) == (300, 10, "MRR@20")


# ----------------------------------------------------------------------------- sessions/filters
def _clicks(times, user="1", items=None):
    items = items or [str(i) for i in range(len(times))]
    return pd.DataFrame({"user_id": user, "item_id": items, "timestamp": np.array(times, float)})


def test_gap_vs_bucket_sessions():
    clicks = _clicks([1800, 590, 610, 1150])  # unsorted on purpose
    gap = S.sessionize(clicks, "gap", gap_minutes=10)
    assert gap["timestamp"].tolist() == [590, 610, 1150, 1800]
    assert gap["session_id"].tolist() == ["u1_s1", "u1_s1", "u1_s1", "u1_s2"]
    bucket = S.sessionize(clicks, "bucket", bucket_minutes=10)
    assert bucket["session_id"].tolist() == ["u1_s1", "u1_s2", "u1_s2", "u1_s3"]
    assert set(S.sessionize(clicks, "user")["session_id"]) == {"1"}
    with pytest.raises(ConversionError, match="unknown session mode"):
        S.sessionize(clicks, "weekly")
    # a gap of exactly 10 minutes stays in the session; users never share a session
    two = pd.concat([_clicks([0, 600]), _clicks([700], user="2")])
    assert S.sessionize(two, "gap")["session_id"].tolist() == ["u1_s1", "u1_s1", "u2_s1"]


def test_iterate_vs_once_filter():
    sess = {"A": "xy", "B": "yz", "C": "zz"}
    df = pd.DataFrame([(s, i) for s, items in sess.items() for i in items],
                      columns=["session_id", "item_id"])
    once, rounds = S.filter_sessions(df, 2, 2, "once")
    assert sorted(set(once["session_id"])) == ["B", "C"] and rounds == 1
    it, rounds = S.filter_sessions(df, 2, 2, "iterate")
    assert sorted(set(it["session_id"])) == ["C"] and rounds == 3
    whole, _ = S.filter_sessions(pd.DataFrame({"session_id": list("AAABB"),
                                               "item_id": list("xyzyz")}), 2, 2, "once",
                                 rare="session")
    assert set(whole["session_id"]) == {"B"}  # authors' code: session with a rare item goes


def test_loo_counts_rule():
    assert S.loo_counts([2, 3, 4, 7]) == {"train": 1 + 1 + 1 + 4, "valid": 2, "test": 3}


# ----------------------------------------------------------------------------- session split
def test_session_split_disjoint_time_ordered_prefix_len(tmp_path):
    src = write_mlcsv(tmp_path / "raw", synthetic_clicks())
    out = tmp_path / "sp"
    assert convert("movielens", "--src", src, "--out", out, "--min-item-count", 1,
                   "--split", "session", "--max-len", "2", "--quiet") == 0
    inter = read_atomic(out / "sp.inter")
    parts = {p: read_atomic(out / f"sp.{p}.inter") for p in ("train", "valid", "test")}
    assert list(parts["train"].columns) == ["session_id:token", "item_id_list:token_seq",
                                            "item_id:token", "prefix_len:float",
                                            "timestamp:float"]
    ids = [set(p["session_id:token"]) for p in parts.values()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    start = inter.assign(t=inter["timestamp:float"].astype(float)).groupby(
        "session_id:token")["t"].min()
    assert start[list(ids[0])].max() <= start[list(ids[1])].min()
    assert start[list(ids[1])].max() <= start[list(ids[2])].min()
    seqs = inter.groupby("session_id:token", sort=False)["item_id:token"].agg(list)
    allp = pd.concat(parts.values())
    assert len(allp) == len(inter) - len(seqs)  # all prefixes: n - 1 per session
    for _, r in allp.iterrows():
        seq, k = seqs[r["session_id:token"]], int(r["prefix_len:float"])
        assert r["item_id:token"] == seq[k]
        assert r["item_id_list:token_seq"].split(" ") == seq[max(0, k - 2):k]
    assert "benchmark_filename: [train, valid, test]" in (out / "sp.yaml").read_text()


def test_prefixes_last(tmp_path):
    src = write_ml1m(tmp_path / "raw", synthetic_clicks())
    out = tmp_path / "last"
    convert("movielens", "--src", src, "--out", out, "--min-item-count", 1, "--split",
            "session", "--prefixes", "last", "--quiet")
    n = sum(len(read_atomic(out / f"last.{p}.inter")) for p in ("train", "valid", "test"))
    assert n == json.loads((out / "stats.json").read_text())["sessions"]


# ----------------------------------------------------------------------------- Amazon
OLD_META = [
    {"asin": "A1", "title": "Rose Soap", "categories": [["Beauty", "Bath & Body"], ["Beauty"]],
     "brand": "Acme"},
    {"asin": "A2", "title": "Lip Balm &amp; Co", "categories": [["Beauty", "Lips"]]},
    {"asin": "A3", "title": "Shampoo", "categories": [["Beauty", "Hair Care, Shampoo"]],
     "brand": "Zed"},
    {"asin": "A4", "title": "Rare Cream", "categories": [["Beauty"]]},
]


def amazon_reviews(asin_key="asin", user_key="reviewerID", time_key="unixReviewTime", ms=1):
    rows = []
    for u in range(4):
        for k, a in enumerate(["A1", "A2", "A3"]):
            rows.append({user_key: f"U{u}", asin_key: a, time_key: (1400000000 + u + k) * ms,
                         "overall": 5.0, "reviewText": "ok\ttab"})
    rows.append(dict(rows[0]))  # an exact duplicate
    rows.append({user_key: "U0", asin_key: "A4", time_key: 1500000000 * ms})  # under any k-core
    return rows


def _write_lines(path, lines, gz):
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("release,gz", [("2014", True), ("2014", False), ("2018", True),
                                        ("2023", False)])
def test_amazon_releases(tmp_path, release, gz):
    if release == "2014":  # meta as Python literals (single quotes)
        reviews = [json.dumps(r) for r in amazon_reviews()]
        meta = [repr(m) for m in OLD_META]
    elif release == "2018":
        reviews = [json.dumps(r) for r in amazon_reviews()]
        meta = [json.dumps({**{k: v for k, v in m.items() if k != "categories"},
                            "category": m["categories"][0]}) for m in OLD_META]
    else:
        reviews = [json.dumps(r) for r in amazon_reviews("parent_asin", "user_id", "timestamp",
                                                         1000)]
        meta = [json.dumps({"parent_asin": m["asin"], "title": m["title"],
                            "categories": m["categories"][0], "store": m.get("brand")})
                for m in OLD_META]
    ext = ".json.gz" if gz else ".json"
    r = _write_lines(tmp_path / f"reviews{ext}", reviews, gz)
    m = _write_lines(tmp_path / f"meta{ext}", meta, gz)
    out = tmp_path / "beauty"
    assert convert("amazon", "--reviews", r, "--meta", m, "--out", out, "--min-item-count", 2,
                   "--k-core", "3", "--quiet") == 0
    item = read_atomic(out / "beauty.item").set_index("item_id:token")
    assert list(item.columns) == ["title:token_seq", "categories:token_seq", "brand:token_seq"]
    assert item.loc["A1", "categories:token_seq"] == "Beauty, Bath & Body"  # flattened, distinct
    assert item.loc["A3", "categories:token_seq"] == "Beauty, Hair Care Shampoo"  # inner comma
    stats = json.loads((out / "stats.json").read_text())
    # the input's size (12 reviews, 1 duplicate, 1 on a rare item) before dedup and the 3-core
    assert stats["raw"]["clicks"] == 14 and stats["raw"]["items"] == 4
    assert stats["after_reader_filters"] == {"users": 4, "items": 3, "clicks": 12}
    assert "after dedup / k-core" in (out / "stats.txt").read_text()
    assert item.loc["A2", "title:token_seq"] == "Lip Balm & Co"
    assert item.loc["A2", "brand:token_seq"] == ""
    inter = read_atomic(out / "beauty.inter")
    assert sorted(set(inter["session_id:token"])) == ["U0", "U1", "U2", "U3"]  # user sessions
    assert inter["timestamp:float"].iloc[0] == "1400000000"


def test_amazon_missing_text(tmp_path, capsys):
    reviews = [x for x in amazon_reviews() if x["asin"] != "A4"]
    r = _write_lines(tmp_path / "r.json", [json.dumps(x) for x in reviews], False)
    m = _write_lines(tmp_path / "m.json", [json.dumps(x) for x in OLD_META[:2]], False)
    args = ["amazon", "--reviews", r, "--meta", m, "--min-item-count", 1, "--quiet"]
    assert convert(*args, "--out", tmp_path / "a") == 2
    assert "1 clicked item(s) have no text in m.json (e.g. A3)" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    assert convert(*args, "--out", tmp_path / "b", "--allow-missing-text") == 0
    assert read_atomic(tmp_path / "b" / "b.item").set_index("item_id:token").loc[
        "A3", "title:token_seq"] == ""
    assert convert(*args, "--out", tmp_path / "c", "--drop-missing-text") == 0
    assert set(read_atomic(tmp_path / "c" / "c.inter")["item_id:token"]) == {"A1", "A2"}


# ----------------------------------------------------------------------------- errors
def _err(capsys, *argv):
    assert convert(*argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_bad_inputs_name_file_and_line(tmp_path, capsys):
    rows = synthetic_clicks()
    src = write_ml1m(tmp_path / "sep", rows)
    with gzip.open(src / "ratings.dat.gz", "wt") as f:
        f.write("1::2::4::978300000\n1::3::4::978300060\n1,4,4,978300120\n")
    err = _err(capsys, "movielens", "--src", src, "--out", tmp_path / "o")
    assert "ratings.dat.gz line 3: expected 4 '::'-separated fields, got 1" in err
    assert "wrong separator" in err

    (src / "ratings.dat.gz").unlink()
    (src / "ratings.dat").write_text("1::2::4::978300000\n")
    (src / "movies.dat").write_text("1::Toy Story (1995)::Comedy\n2\tHeat (1995)\tAction\n")
    err = _err(capsys, "movielens", "--src", src, "--out", tmp_path / "o")
    assert "movies.dat line 2: expected 3 '::'-separated fields, got 1" in err

    src = write_mlcsv(tmp_path / "col", rows)
    (src / "ratings.csv").write_text("userId;movieId;rating;timestamp\n1;2;3;4\n")
    err = _err(capsys, "movielens", "--src", src, "--out", tmp_path / "o")
    assert "ratings.csv line 1: missing column" in err and "wrong separator" in err
    (src / "ratings.csv").write_text("userId,movieId,rating\n1,2,3\n")
    err = _err(capsys, "movielens", "--src", src, "--out", tmp_path / "o")
    assert "ratings.csv line 1: missing column(s) ['timestamp']" in err
    (src / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,3,4\n1,2,3,x\n")
    err = _err(capsys, "movielens", "--src", src, "--out", tmp_path / "o")
    assert "ratings.csv line 3: timestamp 'x' is not a number" in err

    src = write_mlcsv(tmp_path / "enc", rows)
    (src / "movies.csv").write_bytes(b"movieId,title,genres\n1,A (1999),Drama\n2,Caf\xe9 (1999),"
                                     b"Drama\n")
    err = _err(capsys, "movielens", "--src", src, "--out", tmp_path / "o")
    assert "movies.csv line 3: cannot decode" in err and "--encoding" in err

    src = write_mlcsv(tmp_path / "empty", rows)
    err = _err(capsys, "movielens", "--src", src, "--out", tmp_path / "o",
               "--min-item-count", 1000)
    assert "no clicks left after filtering" in err and "--min-item-count 1000" in err

    bad = _write_lines(tmp_path / "r.json", [json.dumps(amazon_reviews()[0]), "{oops"], True)
    meta = _write_lines(tmp_path / "m.json", [repr(m) for m in OLD_META], False)
    err = _err(capsys, "amazon", "--reviews", bad, "--meta", meta, "--out", tmp_path / "o")
    assert "r.json line 2: neither JSON" in err
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- atomic output
def test_atomic_output_and_overwrite(tmp_path, monkeypatch, capsys):
    src = write_mlcsv(tmp_path / "raw", synthetic_clicks())
    out = tmp_path / "ds" / "atom"
    args = ["movielens", "--src", src, "--out", out, "--min-item-count", 1, "--quiet"]

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(W, "write_item", boom)
    with pytest.raises(OSError):
        convert(*args)
    assert os.listdir(tmp_path / "ds") == []  # neither OUT nor a temp folder
    monkeypatch.undo()
    assert convert(*args) == 0
    assert "already exists" in _err(capsys, *args)
    monkeypatch.setattr(W, "write_item", boom)
    with pytest.raises(OSError):
        convert(*args, "--overwrite")
    assert sorted(os.listdir(tmp_path / "ds")) == ["atom"]  # the old output is kept intact
    assert (out / "atom.item").exists()
    monkeypatch.undo()
    props = tmp_path / "props"
    assert convert(*args, "--overwrite", "--split", "session",
                   "--properties-dir", props) == 0
    assert (props / "atom.yaml").read_text() == (out / "atom.yaml").read_text()
    assert (out / "atom.train.inter").exists()


# ----------------------------------------------------------------------------- RecBole
@pytest.mark.parametrize("split", ["loo", "session"])
def test_loads_in_recbole(tmp_path, monkeypatch, split):
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation

    monkeypatch.setattr(sys, "argv", ["pytest"])
    src = write_mlcsv(tmp_path / "raw", synthetic_clicks(n_users=20))
    out = tmp_path / "data" / "tiny"
    assert convert("movielens", "--src", src, "--out", out, "--min-item-count", 1,
                   "--split", split, "--quiet") == 0
    config = Config(model="GRU4Rec", dataset="tiny", config_file_list=[str(out / "tiny.yaml")],
                    config_dict={"data_path": str(tmp_path / "data"), "epochs": 1,
                                 "train_neg_sample_args": None, "state": "ERROR",
                                 "checkpoint_dir": str(tmp_path / "saved")})
    train, valid, test = data_preparation(config, create_dataset(config))
    stats = json.loads((out / "stats.json").read_text())
    got = {"train": len(train.dataset), "valid": len(valid.dataset), "test": len(test.dataset)}
    assert got == stats["samples"]  # the LOO arithmetic matches RecBole's own split
