"""``resdet reproduce --only detection``: VGG-16 against ResNet-50 as the Faster R-CNN backbone
(the paper's Tables 7 and 8), on a CPU proxy.

Both backbones go through resdet's two stages with one recipe each:

1. classification pretraining on the shapes classification set (``configs/repro_cls_vgg16.py``,
   ``configs/repro_cls_r50.py``; same data, schedule and budget, seed 0);
2. Faster R-CNN fine-tuning on the harder shapes detection set
   (``configs/repro_det_vgg16.py``: conv5_3, RoIAlign 7x7, fc6/fc7; ``configs/repro_det_r50_c4.py``:
   conv1-4 shared, RoIAlign 14x14, conv5 per RoI: the same pooler), same schedule, evaluated with
   the COCO metrics.

A call trains one fine-tuning seed (``--seed``) per backbone; the pretrained weights are the
same for every seed, so the seed spread is that of fine-tuning. Seeds accumulate in
``results.json`` (``detection.by_seed``) while the settings stay the same; the summary gives
each metric's mean and range over the seeds and ResNet's relative improvement over VGG-16 the
way the paper states it ((ResNet - VGG) / VGG). FLOPs (multiply-adds at the 128 x 128 input)
and the time per image (batch 1, this process's threads) are measured for both models.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch

from ..engine import Trainer
from ..engine.logger import read_metrics
from ..models.utils.detector_complexity import get_detector_complexity
from ..utils.config import load_config
from .model import init_model
from .reproduce import config_text, recipe_digest, train_once, trained_settings
from .reproduce_summary import add_seed, relative_improvement

BACKBONES = {
    "vgg16": dict(cls="repro_cls_vgg16", det="repro_det_vgg16", label="VGG-16"),
    "r50_c4": dict(cls="repro_cls_r50", det="repro_det_r50_c4", label="ResNet-50 (C4)"),
}
METRICS = {"mAP": "bbox_AP", "mAP50": "bbox_AP50"}  # ours -> CocoMetric's keys


@dataclass
class DetectionSettings:
    """What the detection comparison depends on (besides the seed and the folders)."""

    cls_iterations: int = 2000
    det_iterations: int = 600
    cls_batch_size: int = 32
    batch_size: int = 4
    cls_num_train: int = 2500
    cls_num_val: int = 500
    num_train: int = 2000
    num_val: int = 300
    cls_data_root: str = "data/shapes_cls"
    data_root: str = "data/shapes_hard"
    timing_images: int = 40


def _train_or_reuse(cfg, work_dir: str, wanted: dict, name: str) -> str:
    """Train ``cfg`` in ``work_dir`` unless a finished run with the same ``wanted`` settings and
    recipe is there (an interrupted one resumes: ``train_once``); returns its ``final.pth``."""

    def train() -> None:
        Trainer.from_config(cfg.to_dict(), work_dir=work_dir, resume="auto", config_text=config_text(cfg, name)).train()

    train_once(work_dir, dict(wanted, recipe=recipe_digest(cfg, name)), train)
    return os.path.join(work_dir, "final.pth")


def _resume_interval(iterations: int, parts: int) -> int:
    """Checkpoints every ``iterations / parts`` for runs of 100 iterations or more; shorter runs
    (the smoke test's) write only their final checkpoint."""
    return max(1, iterations // parts) if iterations >= 100 else iterations


def pretrain_config(key: str, d: DetectionSettings):
    """The classification stage of ``key`` with the settings' data and budget (seed 0)."""
    cfg = load_config(BACKBONES[key]["cls"])
    cfg.train_dataloader.update(batch_size=d.cls_batch_size)
    cfg.train_dataloader.dataset.update(data_root=d.cls_data_root, num_images=d.cls_num_train)
    cfg.val_dataloader.dataset.update(data_root=d.cls_data_root, num_images=d.cls_num_val)
    n = d.cls_iterations
    # validation error at every quarter (the pretraining curve), a resume point as often
    every = _resume_interval(n, 4)
    cfg.train_cfg.update(max_iters=n, val_interval=every, checkpoint_interval=every, seed=0)
    cfg.train_cfg.save_best = None  # no best.pth beside final.pth: VGG-16 and its AdamW state are 1.6 GB
    cfg.param_scheduler[0]["warmup_iters"] = max(1, min(int(cfg.param_scheduler[0]["warmup_iters"]), n // 10))
    return cfg


def detection_config(key: str, d: DetectionSettings, seed: int, checkpoint: str):
    """The fine-tuning stage of ``key`` from ``checkpoint`` with the settings' data and budget."""
    cfg = load_config(BACKBONES[key]["det"])
    cfg.pop("pretrain", None)  # the stage is run here, with this budget
    cfg.model.init_cfg.checkpoint = checkpoint
    cfg.train_dataloader.update(batch_size=d.batch_size)
    cfg.train_dataloader.dataset.update(data_root=d.data_root, num_images=d.num_train)
    cfg.val_dataloader.dataset.update(data_root=d.data_root, num_images=d.num_val)
    n = d.det_iterations
    warmup, steps = cfg.param_scheduler
    warmup["warmup_iters"] = max(1, min(int(warmup["warmup_iters"]), n // 8))
    steps["milestones"] = [max(1, round(n * 0.75))]
    cfg.train_cfg.update(max_iters=n, val_interval=n, checkpoint_interval=_resume_interval(n, 4), seed=seed)
    cfg.train_cfg.save_best = None
    return cfg


def _recipes(d: DetectionSettings) -> dict:
    """Per backbone, digests of both stages' configs (the fine-tuning one without its seed and
    checkpoint path): seeds are gathered only while the recipes stay the same."""
    return {
        key: [
            recipe_digest(pretrain_config(key, d), names["cls"]),
            recipe_digest(detection_config(key, d, 0, "pretrained.pth"), names["det"]),
        ]
        for key, names in BACKBONES.items()
    }


def _last_val(work_dir: str) -> dict:
    records = read_metrics(os.path.join(work_dir, "metrics.jsonl"), "val")
    if not records:
        raise ValueError(f"{work_dir}/metrics.jsonl has no validation record")
    return records[-1]


def _train_minutes(work_dir: str) -> float:
    """The training time of a run from its log's per-iteration times (a reused run keeps the
    minutes it was trained in; a resumed one counts each iteration once)."""
    seconds, done = 0.0, 0
    for record in read_metrics(os.path.join(work_dir, "metrics.jsonl"), "train"):
        it = int(record.get("iter", 0))
        if it > done:
            seconds += float(record.get("time", 0.0)) * (it - done)
            done = it
    return round(seconds / 60, 2)


def measure_model(cfg, checkpoint: str, d: DetectionSettings) -> dict:
    """FLOPs and parameters at the proxy's input size, and the mean time per image (batch 1,
    after one warm-up image) on the first ``timing_images`` validation images."""
    from ..registry import DATASETS
    from .detect import inference_detector

    model = init_model(cfg, checkpoint)
    size = int(cfg.val_dataloader.dataset.image_size)
    complexity = get_detector_complexity(model, (size, size))
    dataset_cfg = cfg.val_dataloader.dataset.to_dict()
    dataset_cfg["pipeline"] = []
    dataset = DATASETS.build(dataset_cfg)
    count = min(d.timing_images, len(dataset))
    images = [dataset[i]["img"] for i in range(count + 1)]  # H x W x 3 RGB uint8, as a user passes
    inference_detector(model, images[0], batch_size=1)
    start = time.perf_counter()
    for image in images[1:]:
        inference_detector(model, image, batch_size=1)
    seconds = (time.perf_counter() - start) / max(count, 1)
    return dict(
        gflops=round(complexity["flops"] / 1e9, 3),
        params_m=round(complexity["params"] / 1e6, 2),
        ms_per_image=round(1000 * seconds, 1),
        rois=complexity["rois"],
        input_size=complexity["input_size"],
        threads=torch.get_num_threads(),
    )


def _chain(key: str, d: DetectionSettings, seed: int, work_root: str, log: Callable[[str], None] = print) -> dict:
    """One backbone's two stages (each trained or reused) and its measurements."""
    names = BACKBONES[key]
    cls_cfg = pretrain_config(key, d)
    cls_dir = os.path.join(work_root, "detection", f"cls_{key}_it{d.cls_iterations}")
    log(f"[reproduce] pretraining {names['label']} ({d.cls_iterations} iterations)")
    # the pretraining's stamp holds only its own settings: another fine-tuning budget reuses it
    cls_wanted = {k: v for k, v in trained_settings(d).items() if k.startswith("cls_")}
    cls_ckpt = _train_or_reuse(cls_cfg, cls_dir, dict(cls_wanted, stage="cls", backbone=key), names["cls"])
    top1 = _last_val(cls_dir).get("top1_err")
    det_cfg = detection_config(key, d, seed, cls_ckpt)
    det_dir = os.path.join(work_root, "detection", f"det_{key}_it{d.det_iterations}_s{seed}")
    log(f"[reproduce] fine-tuning Faster R-CNN {names['label']} ({d.det_iterations} iterations, seed {seed})")
    wanted = dict(trained_settings(d), stage="det", backbone=key, seed=seed)
    det_ckpt = _train_or_reuse(det_cfg, det_dir, wanted, names["det"])
    val = _last_val(det_dir)
    result = {ours: round(100 * float(val[theirs]), 2) for ours, theirs in METRICS.items()}
    result["minutes"] = dict(pretrain=_train_minutes(cls_dir), finetune=_train_minutes(det_dir))
    model = measure_model(det_cfg, det_ckpt, d)
    log(
        f"[reproduce] {names['label']}: mAP@[.5:.95] {result['mAP']:.2f}, mAP@0.5 {result['mAP50']:.2f}, "
        f"{model['gflops']:.1f} GFLOPs, {model['ms_per_image']:.0f} ms/image"
    )
    pretrain = dict(top1_err=None if top1 is None else round(100 * float(top1), 2))
    return dict(pretrain=pretrain, result=result, model=model)


def _chain_in_worker(key: str, settings: dict, seed: int, work_root: str, threads: int) -> dict:
    """``_chain`` in a worker process, its output in ``work_root/detection/<key>_s<seed>.log``."""
    import contextlib

    torch.set_num_threads(threads)
    folder = os.path.join(work_root, "detection")
    os.makedirs(folder, exist_ok=True)
    with (
        open(os.path.join(folder, f"{key}_s{seed}.log"), "a", encoding="utf-8") as out,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(out),
    ):
        return _chain(key, DetectionSettings(**settings), seed, work_root)


def _run_chains(d: DetectionSettings, seed: int, work_root: str, workers: int, threads: int | None, log) -> dict:
    """Both backbones' chains: in this process, or one worker process each (``workers`` > 1)."""
    if workers <= 1:
        return {key: _chain(key, d, seed, work_root, log) for key in BACKBONES}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from ..registry import DATASETS
    from ..utils.orphan import exit_with_parent

    for key in BACKBONES:  # generate the data once, before the workers
        for cfg in (pretrain_config(key, d), detection_config(key, d, seed, "")):
            for loader in (cfg.train_dataloader, cfg.val_dataloader):
                DATASETS.build(dict(loader.dataset.to_dict(), pipeline=[]))
    log(f"[reproduce] both backbones at once (logs: {work_root}/detection/<backbone>_s{seed}.log)")
    with ProcessPoolExecutor(
        min(workers, len(BACKBONES)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=exit_with_parent,
        initargs=(os.getpid(),),
    ) as pool:
        futures = {
            key: pool.submit(_chain_in_worker, key, asdict(d), seed, work_root, threads or 1) for key in BACKBONES
        }
        return {key: future.result() for key, future in futures.items()}


def run_detection(d: DetectionSettings, s, previous: dict | None, log: Callable[[str], None] = print) -> dict:
    """Pretrain (or reuse) both backbones, fine-tune both detectors with ``s.seed`` (``s``: the
    call's ``ReproduceSettings``), measure them, and return the ``detection`` entry of
    ``results.json`` (``previous`` seeds kept when their settings match). ``s.workers`` > 1
    trains the two backbones in two processes at once, ``s.threads`` threads each (default 1)."""
    settings = dict(trained_settings(d), recipe=_recipes(d))
    previous = previous if isinstance(previous, dict) and previous.get("settings") == settings else None
    seed = s.seed
    chains = _run_chains(d, seed, s.work_root, s.workers, s.threads or (1 if s.workers > 1 else None), log)
    seed_result = {key: chain["result"] for key, chain in chains.items()}
    entry = add_seed(previous, settings, seed, {k: {m: v[m] for m in METRICS} for k, v in seed_result.items()})
    entry["summary"]["relative_improvement"] = relative_improvement(
        entry["by_seed"], entry["summary"], "r50_c4", "vgg16", METRICS
    )
    minutes = dict((previous or {}).get("minutes") or {}) if previous else {}
    minutes[str(seed)] = {k: v["minutes"] for k, v in seed_result.items()}
    return dict(
        entry,
        pretrain={key: chain["pretrain"] for key, chain in chains.items()},
        models={key: chain["model"] for key, chain in chains.items()},
        minutes=minutes,
        labels={k: v["label"] for k, v in BACKBONES.items()},
    )
