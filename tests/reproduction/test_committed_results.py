"""The committed ``docs/reproduction/results.json`` is what the documented commands produce
with the shipped code: its degradation numbers were gathered under the recipe that
``resdet reproduce`` uses by default, and its summaries and findings follow from its seeds."""

import json
import os

from resdet.apis.reproduce import ReproduceSettings, _recipe
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
