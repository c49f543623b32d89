"""The LLM module's one JSON writer: JSON lines (plain or gzip), JSON documents, numpy values."""

import gzip
import json

import numpy as np
import pytest

from simulator.llm.records import read_json, read_jsonl, write_json, write_jsonl

pytestmark = pytest.mark.llm


@pytest.mark.parametrize("name", ["rows.jsonl", "rows.jsonl.gz"])
def test_jsonl_round_trip(tmp_path, name):
    rows = [{"a": np.int64(3), "b": np.float32(0.5), "c": np.arange(3), "s": "é"}, {"a": 1}]
    path = write_jsonl(tmp_path / "sub" / name, rows)
    assert read_jsonl(path) == [{"a": 3, "b": 0.5, "c": [0, 1, 2], "s": "é"}, {"a": 1}]
    if name.endswith(".gz"):  # really compressed, readable by gzip itself
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            assert json.loads(fh.readline())["a"] == 3


def test_json_round_trip_and_missing_file(tmp_path):
    path = write_json(tmp_path / "x" / "meta.json", {"k": np.int32(2), "v": [np.float64(1.5)]})
    assert read_json(path) == {"k": 2, "v": [1.5]}
    assert path.read_text() == json.dumps({"k": 2, "v": [1.5]}, indent=2)
    with pytest.raises(FileNotFoundError, match="run the stage"):
        read_jsonl(tmp_path / "nope.jsonl")
    with pytest.raises(TypeError, match="not JSON serialisable"):
        write_json(tmp_path / "bad.json", {"x": object()})


def test_hh_files_go_through_the_same_writer(tmp_path):
    from simulator.llm.hh_features import load_hh_pairs, write_tiny_hh

    path = write_tiny_hh(tmp_path / "hh.jsonl.gz", n=5, seed=1)
    assert read_jsonl(path) == load_hh_pairs(path)
    assert len(load_hh_pairs(path)) == 5
