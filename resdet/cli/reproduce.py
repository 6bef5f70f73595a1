"""Re-run the paper's central CIFAR findings on a CPU proxy resdet generates itself
(data/proxy32: ten shape classes at 32 x 32, 20k training / 5k test images):

- degradation (Fig. 6): plain-20 / plain-56 vs ResNet-20 / ResNet-56 (option A);
- response (Fig. 7): std of the 3x3 layer responses of those four nets on the test split;
- shortcuts (Table 3's direction): ResNet-20 with shortcut options A, B, C.

    resdet reproduce                        # everything, into docs/reproduction/
    resdet reproduce --only degradation --seed 1 --iterations 3200
    resdet reproduce --smoke --out /tmp/r   # a few iterations on tiny data (the test)

The recipe is the paper's (Sec. 4.2) scaled to the budget: SGD lr 0.1, momentum 0.9, weight
decay 1e-4, batch 64 (the paper: 128; --batch-size), lr / 10 at 50% and 75% of --iterations,
4-pixel pad + random crop + flip, per-pixel mean. The runs train in --workers processes of
one thread each (robust on CPU cores shared with other jobs), in --work-root (finished runs
are reused, interrupted ones resume); results.json, degradation.png, layer_response.png and
shortcuts.png go to --out. See docs/reproduction.md for the measured numbers.
"""

from __future__ import annotations

import argparse
import sys

from resdet.cli._errors import command
from resdet.utils.outputs import check_output_path

SMOKE = dict(iterations=2, batch_size=8, num_train=40, num_test=20, val_points=1, log_interval=1, threads=1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--only",
        choices=("degradation", "response", "shortcuts"),
        default=None,
        help="run one experiment (response uses the degradation runs)",
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed (the data set is fixed)")
    parser.add_argument("--iterations", type=int, default=None, help="iterations per run (default 1600)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 128 (the paper's)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="training processes at once (default 4, one thread each; 1: all in this process)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads per training process (default 1 with --workers > 1, else torch's)",
    )
    parser.add_argument("--out", default=None, help="results.json and figures (default docs/reproduction)")
    parser.add_argument("--work-root", default=None, help="training runs (default work_dirs/reproduce)")
    parser.add_argument("--data-root", default=None, help="the generated proxy set (default data/proxy32)")
    parser.add_argument(
        "--smoke", action="store_true", help="a few iterations on tiny data into --out (default: a temporary folder)"
    )
    return parser


@command("reproduce")
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    check_output_path(args.out, what="--out", directory=True)  # before hours of training
    import os
    import tempfile

    from resdet.apis.reproduce import ReproduceSettings, reproduce

    settings = ReproduceSettings(seed=args.seed, workers=4)
    if args.smoke:
        scratch = args.out or tempfile.mkdtemp(prefix="resdet_reproduce_smoke_")
        settings = ReproduceSettings(
            seed=args.seed,
            out_dir=scratch,
            work_root=os.path.join(scratch, "runs"),
            data_root=os.path.join(scratch, "data"),
            workers=1,
            **SMOKE,
        )
    for key, value in (
        ("iterations", args.iterations),
        ("batch_size", args.batch_size),
        ("workers", args.workers),
        ("threads", args.threads),
        ("out_dir", args.out),
        ("work_root", args.work_root),
        ("data_root", args.data_root),
    ):
        if value is not None:
            setattr(settings, key, value)
    results = reproduce(settings, only=args.only)
    for experiment in ("degradation", "shortcuts"):
        for name, errors in (results.get(experiment) or {}).items():
            print(
                f"{experiment:12s} {name:9s} train error {errors['train_err']:6.2f}%  "
                f"test error {errors['test_err']:6.2f}%"
            )
    for name, stds in (results.get("layer_response") or {}).items():
        print(f"response     {name:9s} {len(stds)} layers, mean std {sum(stds) / len(stds):.3f}")
    print(f"results: {os.path.join(settings.out_dir, 'results.json')}")
    if args.smoke:  # the smoke run checks that every output was produced
        missing = [k for k in ("degradation", "layer_response", "shortcuts") if not results.get(k)]
        missing += [
            f
            for f in ("degradation.png", "layer_response.png", "shortcuts.png")
            if not os.path.isfile(os.path.join(settings.out_dir, f))
        ]
        if missing:
            print(f"smoke run: missing {', '.join(missing)}", file=sys.stderr)
            return 1
        print("smoke run: results.json and the three figures written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
