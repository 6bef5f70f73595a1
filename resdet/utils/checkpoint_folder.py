"""What to say when a folder is given where a checkpoint file is expected.

A training work dir holds several checkpoints (``final.pth``, ``best*.pth``, the last few
``iter_N.pth``) and which one a user means is a choice (the end of training or the best
validation score), so a folder is refused, not guessed, and the message names the files to
pass instead."""

from __future__ import annotations

import os
import re

_ITER = re.compile(r"^iter_(\d+)\.(pth|safetensors)$")
_SUFFIXES = (".pth", ".pt", ".safetensors")


def checkpoints_in_folder(folder: str) -> list[tuple[str, str]]:
    """``(path, what it is)`` for the checkpoints a user would pass from ``folder``, most
    likely first: ``final.pth``, ``best*.pth``, the latest ``iter_N.pth``, then any other
    checkpoint file (sorted by name)."""
    try:
        names = sorted(
            n for n in os.listdir(folder) if n.endswith(_SUFFIXES) and os.path.isfile(os.path.join(folder, n))
        )
    except OSError:
        return []
    found: list[tuple[str, str]] = []
    iters = sorted((int(m.group(1)), n) for n in names if (m := _ITER.match(n)))
    for name in names:
        if os.path.splitext(name)[0] == "final":
            found.append((name, "end of training"))
    found += [(n, "best validation score") for n in names if n.startswith("best")]
    if iters:
        found.append((iters[-1][1], f"latest iteration, {iters[-1][0]}"))
    listed = {n for n, _ in found} | {n for _, n in iters}
    found += [(n, "") for n in names if n not in listed]
    return [(os.path.join(folder, n), what) for n, what in found]


def folder_message(folder: str, limit: int = 4) -> str:
    """One line: ``folder`` is a folder; the checkpoint files inside it to pass instead."""
    found = checkpoints_in_folder(folder)
    if not found:
        return (
            f"checkpoint {folder} is a folder, not a checkpoint file, and holds no checkpoint "
            f"({', '.join('*' + s for s in _SUFFIXES)}); pass the path of a checkpoint file"
        )
    listed = "; ".join(f"{path} ({what})" if what else path for path, what in found[:limit])
    more = f"; and {len(found) - limit} more" if len(found) > limit else ""
    return f"checkpoint {folder} is a folder, not a checkpoint file; pass one of the checkpoints in it: {listed}{more}"
