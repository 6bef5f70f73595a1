"""Seeds of ``resdet reproduce``: results of several ``--seed`` calls gathered in one
``results.json`` entry, their spread, and the paper's claims checked per seed.

An entry is ``{'settings', 'by_seed': {seed: {run: {metric: value}}}, 'summary': {run: {metric:
{'mean', 'min', 'max', 'n'}}}}`` (plus ``'findings'`` for the degradation experiment). A call
adds its seed to the entry it finds when the settings are the same, and starts a new one when
they are not (numbers of other schedules are never mixed).
"""

from __future__ import annotations

import math
import statistics

import numpy as np

# the paper's degradation claims (Fig. 6, Table 6): (description, run that should be lower, run, metric)
DEGRADATION_CLAIMS = (
    ("plain-56 has a higher training error than plain-20 (degradation)", "plain20", "plain56", "train_err"),
    ("ResNet-56 has a lower training error than ResNet-20", "resnet56", "resnet20", "train_err"),
    ("ResNet-56 has a lower test error than ResNet-20", "resnet56", "resnet20", "test_err"),
    ("ResNet-20 has a lower training error than plain-20", "resnet20", "plain20", "train_err"),
    ("ResNet-20 has a lower test error than plain-20", "resnet20", "plain20", "test_err"),
    ("ResNet-56 has a lower training error than plain-56", "resnet56", "plain56", "train_err"),
    ("ResNet-56 has a lower test error than plain-56", "resnet56", "plain56", "test_err"),
)


def stats(values: list[float]) -> dict:
    return dict(mean=round(statistics.fmean(values), 3), min=min(values), max=max(values), n=len(values))


def add_seed(previous: dict | None, settings: dict, seed: int, runs: dict[str, dict]) -> dict:
    """``previous`` with ``runs`` (``{run: {metric: value}}``) as seed ``seed``, when its settings
    are ``settings``; else a new entry with this seed alone. The summary is recomputed."""
    same = isinstance(previous, dict) and previous.get("settings") == settings
    by_seed = dict(previous["by_seed"]) if same else {}
    by_seed[str(seed)] = runs
    by_seed = {k: by_seed[k] for k in sorted(by_seed, key=int)}
    names = list(runs)
    metrics = list(next(iter(runs.values())))
    summary = {
        name: {m: stats([seed_runs[name][m] for seed_runs in by_seed.values()]) for m in metrics} for name in names
    }
    return dict(settings=settings, by_seed=by_seed, summary=summary)


def degradation_findings(by_seed: dict[str, dict]) -> dict[str, dict[str, bool]]:
    """Each of ``DEGRADATION_CLAIMS`` per seed: does it hold?"""
    return {
        text: {seed: runs[lower][metric] < runs[higher][metric] for seed, runs in by_seed.items()}
        for text, lower, higher, metric in DEGRADATION_CLAIMS
    }


def paired_test(wrong_lower: np.ndarray, wrong_higher: np.ndarray) -> dict:
    """Two nets' mistakes on the same test images (boolean per image): how many images only
    one of them gets wrong, how many both, and the exact two-sided McNemar p-value of the
    difference (a binomial test on the images where they disagree). A claim "A has the lower
    test error" is a tie, not a finding, when p is large."""
    a, b = np.asarray(wrong_lower, dtype=bool), np.asarray(wrong_higher, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"the two nets were tested on different image counts: {a.shape} and {b.shape}")
    only_lower, only_higher = int((a & ~b).sum()), int((~a & b).sum())
    n = only_lower + only_higher
    tail = sum(math.comb(n, i) for i in range(min(only_lower, only_higher) + 1)) / 2**n if n else 0.5
    return dict(
        only_lower_wrong=only_lower,
        only_higher_wrong=only_higher,
        both_wrong=int((a & b).sum()),
        mcnemar_p=round(min(1.0, 2 * tail), 4),
    )


def degradation_paired_tests(wrong: dict[str, np.ndarray]) -> dict[str, dict]:
    """``paired_test`` for each test-error claim of ``DEGRADATION_CLAIMS`` (``wrong``: per run,
    its mistakes on the test split)."""
    return {
        text: paired_test(wrong[lower], wrong[higher])
        for text, lower, higher, metric in DEGRADATION_CLAIMS
        if metric == "test_err"
    }


def relative_improvement(by_seed: dict[str, dict], summary: dict, better: str, base: str, metrics) -> dict:
    """``(better - base) / base`` in percent, as the paper states its detection gains: of the
    means over the seeds and per seed (``None`` where the base is 0)."""

    def rel(a: float, b: float) -> float | None:
        return round(100 * (a / b - 1), 1) if b > 0 else None

    return {
        m: dict(
            of_means=rel(summary[better][m]["mean"], summary[base][m]["mean"]),
            per_seed={s: rel(runs[better][m], runs[base][m]) for s, runs in by_seed.items()},
        )
        for m in metrics
    }
