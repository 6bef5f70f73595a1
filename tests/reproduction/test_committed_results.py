"""The committed ``docs/reproduction/results.json`` is what the documented commands produce
with the shipped code: its degradation and detection numbers were gathered under the recipes that
``resdet reproduce`` uses by default, and its summaries and findings follow from its seeds."""

import json
import os

from resdet.apis.reproduce import ReproduceSettings, _recipe, trained_settings
from resdet.apis.reproduce_summary import add_seed, degradation_findings

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs")
RESULTS = os.path.join(DOCS, "reproduction", "results.json")


def test_committed_degradation_results_are_the_default_recipes():
    with open(RESULTS, encoding="utf-8") as fh:
        results = json.load(fh)
    entry = results["degradation"]
    # a change of the recipe, the proxy or the schedule without a rerun fails here
    assert entry["settings"] == _recipe(ReproduceSettings())
    assert "0" in entry["by_seed"]
    rebuilt = None
    for seed, runs in entry["by_seed"].items():
        rebuilt = add_seed(rebuilt, entry["settings"], int(seed), runs)
    assert rebuilt["summary"] == entry["summary"]
    assert degradation_findings(entry["by_seed"]) == entry["findings"]
    assert set(entry["paired_tests"]) == set(entry["by_seed"])
    for name in ["layer_response.png"] + [
        f"degradation{'' if s == '0' else '_seed' + s}.png" for s in entry["by_seed"]
    ]:
        assert os.path.isfile(os.path.join(DOCS, "reproduction", name)), name


def test_committed_detection_results_are_the_default_recipes_on_two_seeds():
    from resdet.apis.reproduce_det import BACKBONES, METRICS, DetectionSettings, _recipes
    from resdet.apis.reproduce_summary import relative_improvement

    with open(RESULTS, encoding="utf-8") as fh:
        entry = json.load(fh)["detection"]
    d = DetectionSettings()
    # both backbones' pretraining and fine-tuning recipes and budgets are the shipped defaults
    assert entry["settings"] == dict(trained_settings(d), recipe=_recipes(d))
    assert len(entry["by_seed"]) >= 2, "the comparison needs a seed spread"
    rebuilt = None
    for seed, runs in entry["by_seed"].items():
        assert set(runs) == set(BACKBONES)
        for metrics in runs.values():
            assert set(metrics) == set(METRICS) and all(0.0 <= v <= 100.0 for v in metrics.values())
        rebuilt = add_seed(rebuilt, entry["settings"], int(seed), runs)
    summary = {k: v for k, v in entry["summary"].items() if k != "relative_improvement"}
    assert rebuilt["summary"] == summary
    assert entry["summary"]["relative_improvement"] == relative_improvement(
        entry["by_seed"], summary, "r50_c4", "vgg16", METRICS
    )
    assert set(entry["minutes"]) == set(entry["by_seed"])
    for key in BACKBONES:
        # pretraining learned the classification set (chance: 80 % error on five classes)
        assert entry["pretrain"][key]["top1_err"] < 40.0, key
        assert entry["models"][key]["gflops"] > 0 and entry["models"][key]["ms_per_image"] > 0
    assert os.path.isfile(os.path.join(DOCS, "reproduction", "detection.png"))
