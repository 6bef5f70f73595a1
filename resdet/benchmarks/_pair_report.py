"""What a pair benchmark (``det``, ``mask``) reports: the flat summary of ``--json`` and the
printed table, both from the nested result of ``_pair.bench_pair``."""

from __future__ import annotations


def summarize(res: dict) -> dict:
    """The flat figures of ``--json``: ratios resdet / torchvision, raw ms and MB."""
    inf, train = res["inference_s"], res["train_step_s"]
    out = {
        "allocator": res.get("allocator", "glibc"),
        "infer_ratio": inf["ratio"],
        "train_ratio": train["ratio"],
        "max_box_diff": res["max_box_diff"],
        "max_score_diff": res["max_score_diff"],
        "infer_ms": {"torchvision": inf["torchvision"] * 1000, "resdet": inf["resdet"] * 1000},
        "train_ms": {"torchvision": train["torchvision"] * 1000, "resdet": train["resdet"] * 1000},
    }
    if "ratio_bf16" in inf:
        out["bf16_ratio"] = inf["ratio_bf16"]
        out["infer_ms"]["resdet_bf16"] = inf["resdet_bf16"] * 1000
    if "ratio_compiled" in inf:
        out["compiled_ratio"] = inf["ratio_compiled"]
        out["infer_ms"]["resdet_compiled"] = inf["resdet_compiled"] * 1000
        out["compile_first_call_s"] = inf["compile_first_call_s"]
    if "ratio_compiled" in train:
        out["compiled_train_ratio"] = train["ratio_compiled"]
        out["train_ms"]["resdet_compiled"] = train["resdet_compiled"] * 1000
        out["compile_first_step_s"] = train["compile_first_step_s"]
    if "onnxruntime" in res:
        out["onnxruntime_ratio"] = res["onnxruntime"]["ratio"]
        out["infer_ms"]["onnxruntime"] = res["onnxruntime"]["ms"]
        out["onnxruntime_max_box_diff"] = res["onnxruntime"]["max_box_diff"]
    if "peak_rss" in res:
        rss = res["peak_rss"]
        out["peak_rss_ratio"] = max(rss["infer"]["ratio"], rss["train"]["ratio"])
        out["peak_rss_mb"] = {
            f"{mode}_{impl}": rss[mode][impl]["peak_mb"]
            for mode in ("infer", "train")
            for impl in ("torchvision", "resdet")
        }
    if "efficiency" in res:
        out.update(
            {
                k: res["efficiency"][k]
                for k in (
                    "backbone_gflops",
                    "conv_peak_gflops",
                    "backbone_efficiency",
                    "model_gmacs",
                    "floor_ms",
                    "floor_ratio",
                )
            }
        )
    return out


def print_times(res: dict) -> None:
    inf, train = res["inference_s"], res["train_step_s"]
    print(
        f"  inference / image : torchvision {inf['torchvision'] * 1000:8.1f} ms | resdet "
        f"{inf['resdet'] * 1000:8.1f} ms | ratio {inf['ratio']:.3f}"
    )
    if "resdet_bf16" in inf:
        print(
            f"  inference bf16    : resdet {inf['resdet_bf16'] * 1000:8.1f} ms | ratio vs tv fp32 "
            f"{inf['ratio_bf16']:.3f}"
        )
    if "resdet_compiled" in inf:
        print(
            f"  inference compiled: resdet {inf['resdet_compiled'] * 1000:8.1f} ms | ratio vs tv "
            f"{inf['ratio_compiled']:.3f} | one-time first call {inf['compile_first_call_s']:.1f} s "
            f"(max box diff {res['compiled_max_box_diff']:.2g} px)"
        )
    if "onnxruntime" in res:
        ort = res["onnxruntime"]
        print(
            f"  onnxruntime       : {ort['ms']:8.1f} ms | ratio vs tv eager {ort['ratio']:.3f} | export "
            f"{ort['export_s']:.1f} s (max box diff {ort['max_box_diff']:.2g} px, unpaired {ort['unpaired']})"
        )
    print(
        f"  train step (bs 2) : torchvision {train['torchvision'] * 1000:8.1f} ms | resdet "
        f"{train['resdet'] * 1000:8.1f} ms | ratio {train['ratio']:.3f}"
    )
    if "resdet_compiled" in train:
        failed = f" | eager parts: {train['compile_failed']}" if train["compile_failed"] else ""
        print(
            f"  train compiled    : resdet {train['resdet_compiled'] * 1000:8.1f} ms | ratio vs tv "
            f"{train['ratio_compiled']:.3f} | one-time first step {train['compile_first_step_s']:.1f} s{failed}"
        )
    if "efficiency" in res:
        eff = res["efficiency"]
        print(
            f"  backbone+neck     : {eff['backbone_gmacs']:.1f} GMACs in {eff['backbone_ms']:.0f} ms = "
            f"{eff['backbone_gflops']:.0f} GFLOP/s; large conv {eff['conv_peak_gflops']:.0f} GFLOP/s; "
            f"efficiency {eff['backbone_efficiency']:.0%}"
        )
        print(
            f"  conv floor        : whole inference {eff['model_gmacs']:.1f} GMACs at the large conv's speed = "
            f"{eff['floor_ms']:.0f} ms, a ratio of {eff['floor_ratio']:.3f} vs torchvision (the best any "
            "implementation of the same layers reaches here)"
        )
    if "peak_rss" in res:
        for mode, row in res["peak_rss"].items():
            print(
                f"  peak RSS {mode:<5}    : torchvision {row['torchvision']['peak_mb']:8.0f} MB | resdet "
                f"{row['resdet']['peak_mb']:8.0f} MB | ratio {row['ratio']:.3f}"
            )
