"""``metrics.jsonl``: one reader (``read_metrics``) for the writer's truncation on resume,
``plot-curves``, ``compare-runs`` and ``reproduce``; a line cut by a kill is skipped."""

import json

import pytest

from resdet.cli import compare_runs
from resdet.engine.logger import MetricsWriter, read_metrics
from resdet.utils.errors import DataError


def _run(tmp_path, tail=""):
    writer = MetricsWriter(str(tmp_path))
    for it in (1, 2, 3):
        writer.write({"mode": "train", "iter": it, "loss": 1.0 / it})
        if it > 1:
            writer.write({"mode": "val", "iter": it, "bbox_AP": 0.1 * it})
    with open(writer.path, "a", encoding="utf-8") as fh:
        fh.write(tail)
    return writer


def test_records_by_mode_skip_a_cut_line_and_feed_compare_runs(tmp_path):
    writer = _run(tmp_path, tail='{"mode": "val", "it')
    assert [r["iter"] for r in read_metrics(str(tmp_path), mode="train")] == [1, 2, 3]
    assert [r["bbox_AP"] for r in read_metrics(writer.path, mode="val")] == pytest.approx([0.2, 0.3])
    assert len(read_metrics(str(tmp_path))) == 5
    assert compare_runs.last_val_record(str(tmp_path))["iter"] == 3
    writer.truncate_after(2, drop_val_at_end=True)  # a resume from iteration 2 redoes its validation
    assert [(r["mode"], r["iter"]) for r in read_metrics(str(tmp_path))] == [("train", 1), ("train", 2)]
    with pytest.raises(DataError, match=f"{tmp_path}/metrics.jsonl has no validation record"):
        compare_runs.last_val_record(str(tmp_path))


def test_a_file_that_is_not_metrics_is_one_error_naming_it(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("not json\n" + json.dumps([1, 2]) + "\n")
    with pytest.raises(DataError, match=f"{tmp_path}/metrics.jsonl holds no JSON records"):
        read_metrics(str(tmp_path))
    (tmp_path / "metrics.jsonl").write_text("")
    assert read_metrics(str(tmp_path)) == []
    with pytest.raises(FileNotFoundError, match="metrics.jsonl does not exist"):
        read_metrics(str(tmp_path / "elsewhere"))
