"""A skipped training sample never depends on the batch size: an unreadable image (0 bytes,
text named .png, a link to nowhere or to itself) is counted and replaced by another sample of
the dataset, drawn from the skipped one's own seed, so a batch keeps its size -- a batch of
one sample would make BatchNorm raise on 1 x 1 maps. The replacement depends on the stream
position alone: workers, resume and runs with nothing skipped see the same batches."""

import json
import os

import pytest
import torch
from test_cli_failures import run, tiny_cfg

from resdet.data.loader import build_dataloader


def _records(work):
    with open(os.path.join(work, "metrics.jsonl")) as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.mark.parametrize("batch_size", [2, 4])
@pytest.mark.parametrize("bad", ["zero", "text", "dangling", "loop"])
def test_unreadable_image_is_a_counted_skip_at_any_batch_size(tmp_path, capsys, bad, batch_size):
    work = tmp_path / "w"
    iters = 8 // batch_size  # one epoch of the 8 images: the bad one is drawn exactly once
    rc, err, _ = run(
        capsys, "train-cls", tiny_cfg(tmp_path, batch_size=batch_size, iters=iters, bad=bad), "--work-dir", work
    )
    assert rc == 0 and "Traceback" not in err, err
    assert (work / "final.pth").exists()
    last = _records(str(work))[-1]
    assert last["iter"] == iters and last["num_skipped"] == 1, last
    with open(work / "train.log") as fh:
        assert "a/0.png" in fh.read()  # the skipped file is named in the log


class _Numbers(torch.utils.data.Dataset):
    """Sample i is ``{'img': i (and a random draw), 'label': i}``; indices in ``bad`` read as None."""

    def __init__(self, num=12, bad=()):
        self.num, self.bad = num, set(bad)

    def __len__(self):
        return self.num

    def __getitem__(self, index):
        if index in self.bad:
            return None
        return {"img": torch.full((3, 1, 1), float(torch.rand(())) + index), "label": index}


def _stream(bad=(), batch_size=2, start_iter=0, num_workers=0, count=6):
    cfg = dict(
        batch_size=batch_size,
        num_workers=num_workers,
        dataset=_Numbers(bad=bad),
        collate="cls_collate",
        max_skipped_fraction=None,
    )
    loader = build_dataloader(cfg, training=True, seed=3, start_iter=start_iter, rank=0, world_size=1)
    out = []
    for batch, _ in zip(loader, range(count)):
        out.append((batch["targets"]["labels"].tolist(), batch["inputs"][:, 0, 0, 0].tolist(), batch["num_skipped"]))
    return out


def test_replacement_keeps_batch_size_and_exact_resume_and_changes_nothing_else():
    clean = _stream()
    first_label = clean[0][0][0]
    skipped = _stream(bad=(first_label,))
    assert [len(b[0]) for b in skipped] == [2] * 6  # the batch keeps its size
    assert skipped[0][2] == 1 and first_label not in skipped[0][0]
    assert skipped[0][0][1] == clean[0][0][1] and skipped[0][1][1] == clean[0][1][1]  # its neighbour unchanged
    # every batch without the bad index is the clean stream's, random draws included
    assert [b for b in skipped if first_label not in b[0] and b[2] == 0] == [
        c for c in clean if first_label not in c[0]
    ]
    assert _stream(bad=(first_label,), num_workers=2) == skipped  # workers: the same stand-in
    assert _stream(bad=(first_label,), start_iter=2, count=4) == skipped[2:]  # resume: the same
