"""``resdet reproduce``: the paper's central CIFAR findings on the CPU proxy (data/proxy32).

- ``degradation`` (Fig. 6): plain-20 / plain-56 and ResNet-20 / ResNet-56 (option A) trained
  with one schedule and seed; the training error is the mean of the logged ``train_err`` over
  the last 10% of iterations, the test error the final top-1 error on the test split.
- ``response`` (Fig. 7): std of every 3x3 layer's response of those four checkpoints over the
  test split (needs the degradation runs; trains them when missing).
- ``shortcuts`` (Table 3's direction): ResNet-20 with shortcut options A, B and C (A is the
  degradation run's ResNet-20 when the settings match: same config, schedule and seed).

Every run trains in ``work_root/<name>_it<iterations>_s<seed>`` with the engine's ``Trainer``
(resuming there when interrupted; a finished run is reused). ``results.json`` and the figures
go to ``out_dir``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from mmengine.config import Config

from ..data.loader import build_dataloader
from ..data.synthetic.proxy32 import PROXY32_VERSION
from ..engine import Trainer
from ..engine.logger import read_metrics
from ..registry import DATASETS
from ..utils.config import load_config
from ..utils.io import atomic_write_json
from ..utils.orphan import exit_with_parent
from ..visualization.plots import plot_detection_bars, plot_error_curves, plot_layer_responses
from .classify import resolve_pixel_mean
from .layer_response import layer_response_std
from .model import init_model
from .reproduce_summary import add_seed, degradation_findings, degradation_paired_tests

if TYPE_CHECKING:
    from .reproduce_det import DetectionSettings

EXPERIMENTS = ("degradation", "response", "shortcuts", "detection")
DEGRADATION_RUNS = ("plain20", "plain56", "resnet20", "resnet56")
SHORTCUT_RUNS = {"A": "resnet20", "B": "resnet20_b", "C": "resnet20_c"}
LABELS = {
    "plain20": "plain-20",
    "plain56": "plain-56",
    "resnet20": "ResNet-20",
    "resnet56": "ResNet-56",
    "resnet20_b": "ResNet-20 (B)",
    "resnet20_c": "ResNet-20 (C)",
}
TAIL_FRACTION = 0.1  # train_err = mean over the last 10% of iterations


@dataclass
class ReproduceSettings:
    """What a reproduction run depends on. ``iterations`` sets the schedule: lr / 10 at 50% and
    75% (the paper's 32k / 48k of 64k), ``val_points`` test evaluations, ``log_interval``
    iterations per logged training error."""

    iterations: int = 2400
    seed: int = 0
    batch_size: int = 128
    warmup: bool = True  # the paper's ResNet-110 rule for every net: lr 0.01 until training error < 80%
    num_train: int = 20000
    num_test: int = 5000
    data_root: str = "data/proxy32"
    work_root: str = "work_dirs/reproduce"
    out_dir: str = "docs/reproduction"
    val_points: int = 5
    log_interval: int = 10
    threads: int | None = None  # per training process (default: 1 with workers > 1, else torch's)
    workers: int = 1  # training processes at once (1 thread each: robust on shared CPU cores)
    max_response_images: int | None = None  # None: the whole test split


def schedule(iterations: int) -> list[int]:
    """The paper's two lr steps placed proportionally: 32k and 48k of 64k -> 50% and 75%."""
    return [max(1, round(iterations * 0.5)), max(1, round(iterations * 0.75))]


def run_config(name: str, settings: ReproduceSettings) -> dict:
    """Train ``configs/repro_<name>.py`` under ``settings`` (or reuse the finished run);
    returns ``{'work_dir', 'checkpoint', 'config', 'train_err', 'test_err', 'curves', 'minutes'}``."""
    s = settings
    cfg = _run_config_file(name, s)
    work_dir = os.path.join(s.work_root, f"{name}_it{s.iterations}_s{s.seed}")
    wanted = dict(trained_settings(s), name=name, recipe=recipe_digest(cfg, name))
    final = os.path.join(work_dir, "final.pth")
    start = time.perf_counter()

    def train() -> None:
        mean = resolve_pixel_mean(cfg, work_dir)
        model = cfg.model.to_dict()
        model["mean"] = mean
        # a plain dict and our own config text: mmengine's pretty_text (yapf) takes seconds on
        # the 3 x 32 x 32 mean lists of these configs
        trainer = Trainer.from_config(
            cfg.to_dict(), work_dir=work_dir, resume="auto", model=model, config_text=config_text(cfg, name)
        )
        trainer.train()

    train_once(work_dir, wanted, train)
    summary = summarise_metrics(os.path.join(work_dir, "metrics.jsonl"), s.iterations)
    return dict(summary, work_dir=work_dir, checkpoint=final, config=cfg, minutes=(time.perf_counter() - start) / 60)


# settings that do not change what is trained: where things are, how many processes run it,
# what is measured afterwards (a work root moved or named by an absolute path is the same run;
# the dataset's folder still enters the config, so recipe_digest tells another data root apart)
NOT_TRAINED = frozenset(
    "out_dir work_root data_root cls_data_root val_points max_response_images threads workers timing_images".split()
)


def trained_settings(settings) -> dict:
    """The dataclass ``settings`` as a dict without the ``NOT_TRAINED`` keys: what a run's stamp
    and the seed gathering compare."""
    return {k: v for k, v in asdict(settings).items() if k not in NOT_TRAINED}


def recipe_digest(cfg, name: str) -> str:
    """A digest of the run's merged config without the settings that do not change the trained
    network (threads): a finished run trained with another recipe is not reused."""
    plain = cfg.to_dict()
    plain["train_cfg"] = {k: v for k, v in plain["train_cfg"].items() if k != "threads"}
    return hashlib.sha256(config_text(Config(plain), name).encode()).hexdigest()[:16]


def config_text(cfg, name: str) -> str:
    """The merged config as Python assignments (``repr`` of plain values): what the work dir's
    ``config.py`` and the checkpoints' meta keep."""
    lines = [f"# configs/repro_{name}.py as trained by resdet reproduce"]
    lines += [f"{key} = {value!r}" for key, value in cfg.to_dict().items()]
    return "\n".join(lines) + "\n"


def _run_config_file(name: str, s: ReproduceSettings):
    """``configs/repro_<name>.py`` with the settings' data, schedule and seed."""
    cfg = load_config(f"repro_{name}")
    loader = cfg.train_dataloader
    loader.batch_size = s.batch_size
    for (
        dataset,
        count,
    ) in ((loader.dataset, s.num_train), (cfg.val_dataloader.dataset, s.num_test)):
        dataset.update(data_root=s.data_root, num_images=count)
    rules = [r for r in cfg.param_scheduler if s.warmup or r["type"] != "WarmupUntilLR"]
    for rule in rules:
        if rule["type"] == "StepLR":
            rule["milestones"] = schedule(s.iterations)
    cfg.param_scheduler = rules
    cfg.train_cfg.update(
        max_iters=s.iterations,
        seed=s.seed,
        log_interval=s.log_interval,
        threads=s.threads,
        val_interval=max(1, s.iterations // s.val_points),
        checkpoint_interval=max(1, s.iterations // 4),
        keep_last=1,
    )
    return cfg


def _train_in_worker(name: str, settings: dict) -> dict:
    """One run in a worker process (its output goes to ``work_root/<name>.log``)."""
    import contextlib

    s = ReproduceSettings(**settings)
    torch.set_num_threads(s.threads or 1)
    os.makedirs(s.work_root, exist_ok=True)
    with (
        open(os.path.join(s.work_root, f"{name}.log"), "a", encoding="utf-8") as out,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(out),
    ):
        run = run_config(name, s)
    return {k: v for k, v in run.items() if k != "config"}


def train_runs(names: list[str], settings: ReproduceSettings, log: Callable[[str], None] = print) -> dict[str, dict]:
    """Train (or reuse) ``names``: in this process, or in ``settings.workers`` processes at
    once (the longest runs first). Returns ``{name: run_config(...) result}``."""
    s = settings
    if s.workers <= 1 or len(names) <= 1:
        runs = {}
        for name in names:
            log(f"[reproduce] training {LABELS[name]} ({s.iterations} iterations, seed {s.seed})")
            runs[name] = run_config(name, s)
            _log_run(log, name, runs[name])
        return runs
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    for split, count in (("train", s.num_train), ("test", s.num_test)):  # generate once, before the workers
        DATASETS.build(dict(type="Proxy32Dataset", data_root=s.data_root, split=split, num_images=count))
    order = sorted(names, key=lambda n: -int("".join(c for c in n.split("_")[0] if c.isdigit())))
    runs = {}
    with ProcessPoolExecutor(
        s.workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=exit_with_parent,  # a killed `resdet reproduce` takes its training workers with it
        initargs=(os.getpid(),),
    ) as pool:
        futures = {name: pool.submit(_train_in_worker, name, asdict(s)) for name in order}
        for name in order:
            runs[name] = futures[name].result()
            runs[name]["config"] = _run_config_file(name, s)
            _log_run(log, name, runs[name], os.path.join(s.work_root, name + ".log"))
    return {name: runs[name] for name in names}


def _log_run(log: Callable[[str], None], name: str, run: dict, where: str | None = None) -> None:
    log(
        f"[reproduce] {LABELS[name]}: train error {run['train_err']:.2f}%, test error {run['test_err']:.2f}% "
        f"({run['minutes']:.1f} min{', log ' + where if where else ''})"
    )


STAMP = "reproduce_settings.json"


def train_once(work_dir: str, wanted: dict, train: Callable[[], None], log: Callable[[str], None] = print) -> bool:
    """Run ``train`` (which trains into ``work_dir``, resuming from its checkpoints) unless a
    finished run with the ``wanted`` settings is there; returns whether it trained.

    ``work_dir/reproduce_settings.json`` records the settings from the start (``finished``
    false until ``train`` returns), so an interrupted run resumes only under the same settings:
    a folder left by other settings (or by a version that did not record them) is moved aside
    to ``<work_dir>.stale<k>``, never resumed from and never deleted."""
    stamp = os.path.join(work_dir, STAMP)
    stamped = _read_json(stamp)
    same = _same_settings(stamped, wanted)
    if same and os.path.isfile(os.path.join(work_dir, "final.pth")) and stamped.get("finished", True):
        return False
    if not same and os.path.isdir(work_dir) and os.listdir(work_dir):
        k = 1
        while os.path.exists(f"{work_dir}.stale{k}"):
            k += 1
        os.replace(work_dir, f"{work_dir}.stale{k}")
        log(f"[reproduce] {work_dir} holds a run with other settings: moved to {work_dir}.stale{k}")
    os.makedirs(work_dir, exist_ok=True)
    atomic_write_json(dict(wanted, finished=False), stamp)
    train()
    atomic_write_json(dict(wanted, finished=True), stamp)
    return True


def _same_settings(stamped: dict | None, wanted: dict) -> bool:
    """A finished run is reused when every setting it is trained with matches (keys that older
    versions recorded and this one does not are ignored)."""
    return isinstance(stamped, dict) and all(k in stamped and stamped[k] == v for k, v in wanted.items())


def _read_json(path: str):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def summarise_metrics(metrics_path: str, iterations: int) -> dict:
    """From a run's ``metrics.jsonl``: the training-error curve, the test-error curve (both in
    %), ``train_err`` (mean of the logged training error over the last 10% of iterations, each
    record weighted by the iterations it covers) and ``test_err`` (the last test error)."""
    train = [(int(r["iter"]), float(r["train_err"])) for r in read_metrics(metrics_path, "train") if "train_err" in r]
    test = [(int(r["iter"]), float(r["top1_err"])) for r in read_metrics(metrics_path, "val") if "top1_err" in r]
    if not train or not test:
        raise ValueError(f"{metrics_path} has no train_err / top1_err records")
    tail_start = iterations * (1 - TAIL_FRACTION)
    weighted, covered, previous = 0.0, 0, 0
    for it, err in train:
        span = it - max(previous, tail_start) if it > tail_start else 0
        weighted, covered, previous = weighted + err * span, covered + span, it
    train_err = weighted / covered if covered else train[-1][1]
    scale = 100.0 if max(e for _, e in test) <= 1.0 else 1.0  # TopKError reports fractions or %
    return dict(
        train_err=100.0 * train_err,
        test_err=scale * test[-1][1],
        curves=dict(train=[(i, 100.0 * e) for i, e in train], test=[(i, scale * e) for i, e in test]),
    )


def mistakes_on_test_split(run: dict) -> np.ndarray:
    """Per test image (in the split's order), does the run's final checkpoint get it wrong?"""
    cfg = run["config"]
    loader_cfg = cfg.val_dataloader.to_dict()
    loader_cfg.update(num_workers=0)
    loader = build_dataloader(loader_cfg, training=False)
    model = init_model(cfg, run["checkpoint"]).eval()
    wrong = []
    with torch.no_grad():
        for batch in loader:
            labels = batch["targets"]
            labels = labels["labels"] if isinstance(labels, dict) else labels
            wrong.append((model(batch["inputs"]).argmax(1) != torch.as_tensor(labels)).numpy())
    return np.concatenate(wrong)


def measure_responses(runs: dict[str, dict], settings: ReproduceSettings) -> dict[str, list[float]]:
    """Fig. 7: std of every 3x3 layer's response of each run's final checkpoint on the test split."""
    curves = {}
    for name, run in runs.items():
        cfg = run["config"]
        loader_cfg = cfg.val_dataloader.to_dict()
        loader_cfg.update(num_workers=0)
        loader = build_dataloader(loader_cfg, training=False)
        model = init_model(cfg, run["checkpoint"])
        curves[name] = layer_response_std(
            model, ({"inputs": b["inputs"]} for b in loader), settings.max_response_images
        )
    return curves


def reproduce(
    settings: ReproduceSettings,
    only: str | None = None,
    log: Callable[[str], None] = print,
    detection: DetectionSettings | None = None,
) -> dict:
    """Run the experiments (all, or ``only`` one of ``EXPERIMENTS``), write ``results.json``
    and the figures into ``settings.out_dir`` (results of experiments not run are kept from
    an existing ``results.json``), and return the results dict."""
    if only is not None and only not in EXPERIMENTS:
        raise ValueError(f"--only must be one of {', '.join(EXPERIMENTS)}, got {only!r}")
    s = settings
    os.makedirs(s.out_dir, exist_ok=True)
    if s.threads:
        torch.set_num_threads(s.threads)
    if detection is None:
        from .reproduce_det import DetectionSettings

        detection = DetectionSettings()
    results_path = os.path.join(s.out_dir, "results.json")
    results = _read_json(results_path) or {}
    start = time.perf_counter()
    needed = list(DEGRADATION_RUNS) if only in (None, "degradation", "response") else []
    needed += [n for n in SHORTCUT_RUNS.values() if only in (None, "shortcuts") and n not in needed]
    if needed:
        log(
            f"[reproduce] {len(needed)} runs of {s.iterations} iterations (seed {s.seed}, "
            f"{s.workers} process{'es' if s.workers > 1 else ''} at once)"
        )
    runs = train_runs(needed, s, log) if needed else {}
    suffix = "" if s.seed == 0 else f"_seed{s.seed}"
    if only in (None, "degradation"):
        entry = add_seed(
            results.get("degradation"), _recipe(s), s.seed, {n: _errors(runs[n]) for n in DEGRADATION_RUNS}
        )
        entry["findings"] = degradation_findings(entry["by_seed"])
        previous = results.get("degradation") or {}
        paired = dict(previous.get("paired_tests") or {}) if previous.get("settings") == entry["settings"] else {}
        paired[str(s.seed)] = degradation_paired_tests({n: mistakes_on_test_split(runs[n]) for n in DEGRADATION_RUNS})
        entry["paired_tests"] = {k: paired[k] for k in entry["by_seed"] if k in paired}
        results["degradation"] = entry
        plot_error_curves(
            {
                "plain networks": {LABELS[n]: runs[n]["curves"] for n in ("plain20", "plain56")},
                "ResNets (option A)": {LABELS[n]: runs[n]["curves"] for n in ("resnet20", "resnet56")},
            },
            os.path.join(s.out_dir, f"degradation{suffix}.png"),
        )
    if only in (None, "response"):
        log("[reproduce] layer responses on the test split")
        results["layer_response"] = measure_responses({n: runs[n] for n in DEGRADATION_RUNS}, s)
        plot_layer_responses(
            {LABELS[n]: v for n, v in results["layer_response"].items()}, os.path.join(s.out_dir, "layer_response.png")
        )
    if only in (None, "shortcuts"):
        results["shortcuts"] = add_seed(
            results.get("shortcuts"), _recipe(s), s.seed, {o: _errors(runs[n]) for o, n in SHORTCUT_RUNS.items()}
        )
        plot_error_curves(
            {"ResNet-20, shortcut options": {f"option {o}": runs[n]["curves"] for o, n in SHORTCUT_RUNS.items()}},
            os.path.join(s.out_dir, f"shortcuts{suffix}.png"),
        )
    if only in (None, "detection"):
        from .reproduce_det import run_detection

        results["detection"] = run_detection(detection, s, results.get("detection"), log)
        plot_detection_bars(results["detection"], os.path.join(s.out_dir, "detection.png"))
    # how each experiment was last produced; a call updates only the experiments it ran
    ran = list(EXPERIMENTS) if only is None else [only]
    meta = results.get("meta") if isinstance(results.get("meta"), dict) else {}
    meta = {k: v for k, v in meta.items() if k in EXPERIMENTS}  # drops the one-record layout of before
    call = dict(seed=s.seed, minutes=round((time.perf_counter() - start) / 60, 2), machine=_machine())
    for experiment in ran:
        meta[experiment] = dict(call, units="percent")
        if experiment != "detection":
            meta[experiment].update(
                iterations=s.iterations,
                batch_size=s.batch_size,
                lr_steps=schedule(s.iterations),
                warmup=s.warmup,
                num_train=s.num_train,
                num_test=s.num_test,
                workers=s.workers,
                threads_per_worker=s.threads or (1 if s.workers > 1 else None),
                run_minutes={n: round(r["minutes"], 2) for n, r in runs.items()},
            )
    results["meta"] = meta
    atomic_write_json(results, results_path)
    log(f"[reproduce] wrote {results_path} ({call['minutes']:.1f} min)")
    return results


def _recipe(s: ReproduceSettings) -> dict:
    """The settings a seed's CIFAR-proxy numbers depend on (seeds are gathered while they match):
    the proxy's version and classes, the schedule and data sizes, and the optimizer and lr rules
    every run shares."""
    cfg = _run_config_file("resnet20", s)
    return dict(
        proxy=dict(version=PROXY32_VERSION, classes=list(cfg.classes)),
        iterations=s.iterations,
        batch_size=s.batch_size,
        warmup=s.warmup,
        num_train=s.num_train,
        num_test=s.num_test,
        optimizer=cfg.optimizer.to_dict(),
        param_scheduler=[dict(rule) for rule in cfg.param_scheduler],
    )


def _errors(run: dict) -> dict:
    return dict(train_err=round(run["train_err"], 3), test_err=round(run["test_err"], 3))


def _machine() -> str:
    """The CPU model and core count (what the minutes were measured on)."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            name = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), name)
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores, {platform.system()}, torch {torch.__version__}"
