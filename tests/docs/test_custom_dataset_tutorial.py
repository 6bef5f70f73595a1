"""docs/custom_dataset.md, run as written, so the tutorial cannot go stale.

The page is read top to bottom and its fenced blocks are acted on in order, in one project
folder (a tmp dir) holding ``data/fruits`` and ``data/bccd``: copies of
``tests/fixtures/fruits_coco`` and ``tests/fixtures/bccd_voc``, laid out as the page's section 1
says. The rules:

1. A block preceded by ``<!-- not run: REASON -->`` (the last non-blank line before its fence)
   is skipped, together with the ``text`` blocks quoting its output.
2. A ``python`` block whose first line is ``# NAME.py`` is a config: it is written to NAME.py.
3. Any other ``python`` block is run with this interpreter and must exit 0.
4. A ``bash`` block is run command by command (one command a line; ``\\`` continues a line;
   blank and ``#`` lines are skipped), each by ``bash -c`` from the project folder; each must
   exit 0, except an expected error (rule 5).
5. A ``text`` block quotes the output of the last command of the nearest ``bash`` / ``python``
   block before it (prose may come between). Every quoted line must be a line of that
   command's stdout or stderr, or the end of one (a Python warning's ``file:line: UserWarning:``
   prefix holds a path; lines compared stripped; a line ``...`` stands for omitted output).
   A quoted line ``resdet SUBCOMMAND: error: ...`` is an expected error: that command must
   exit with 2 and the line must be the last line of its stderr, exactly.
6. Size rule, the only change made to the page's commands: a command that *starts* with
   ``resdet train-det``, ``resdet eval`` or ``resdet demo`` gets ``--cfg-options`` from ``TINY``
   appended (2 iterations, batch 1, no loader workers, images resized to 128 px, fewer
   proposals and detections, no ``best.pth``) so the whole page runs in about a minute on 2
   CPU cores. The networks stay the page's ResNet-50 ones (same weights' shapes), so every
   command and the Python blocks can load what the others wrote.
7. Environment: ``resdet`` on PATH is a shim for ``sys.executable -m resdet`` (the command the
   page uses, from this interpreter); ``OMP_NUM_THREADS=1`` (on 2 busy cores, 2 threads per
   process are several times slower); ``RESDET_DEBUG`` is unset, so errors stay one line.

Blocks without a language (folder trees) are prose. After the run, the files the page says
its commands write are checked too.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass

from resdet.utils.config import parse_option_value

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(REPO, "docs", "custom_dataset.md")
FIXTURES = os.path.join(REPO, "tests", "fixtures")

_RESIZE = "[dict(type='ResizeShortestEdge', short_edge_length=128, max_size=192)]"
# fewer proposals and detections at test time: random weights detect 100 things per image
_TEST_TINY = ["model.rpn.post_nms_top_n_test=100", "model.roi_heads.detections_per_img=10"]
_VAL_TINY = [
    "val_dataloader.batch_size=1",
    "val_dataloader.num_workers=0",
    f"val_dataloader.dataset.pipeline={_RESIZE}",
    *_TEST_TINY,
]
TINY = {  # rule 6: appended to commands starting with `resdet <subcommand>`
    "train-det": [
        "train_cfg.max_iters=2",
        "train_cfg.val_interval=2",
        "train_cfg.checkpoint_interval=2",
        "train_cfg.log_interval=1",
        "train_cfg.save_best=None",  # no best.pth: one 350 MB file less to write
        "train_dataloader.batch_size=1",
        "train_dataloader.num_workers=0",
        f"train_dataloader.dataset.pipeline={_RESIZE}",
        "model.rpn.post_nms_top_n_train=200",
        "model.roi_heads.batch_size_per_image=64",
        *_VAL_TINY,
    ],
    "eval": _VAL_TINY,
    "demo": [f"test_pipeline={_RESIZE}", *_TEST_TINY],
}
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(.+?)\s*-->$")
ERROR_LINE = re.compile(r"^resdet [a-z-]+: error: ")
SHOWN_PROJECT = "/path/to/my_project"  # how the page writes the working directory
TIMEOUT_S = 600


@dataclass
class Block:
    lang: str
    lines: list[str]
    line_no: int  # of the opening fence, 1-based
    not_run: str | None = None  # the reason, when marked


@dataclass
class Ran:
    command: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float = 0.0

    def printed(self, quoted: str) -> bool:
        """Whether ``quoted`` is a line of the output, or the end of one."""
        lines = (line.strip() for text in (self.stdout, self.stderr) for line in text.splitlines())
        return any(line == quoted or line.endswith(" " + quoted) for line in lines)

    def describe(self) -> str:
        return (
            f"$ {self.command}\nexit code {self.returncode}\n--- stdout (end) ---\n{self.stdout[-3000:]}"
            f"\n--- stderr (end) ---\n{self.stderr[-3000:]}"
        )


def parse_blocks(text: str) -> list[Block]:
    """The fenced blocks of a markdown text, with their `not run` markers."""
    blocks, lines, i = [], text.splitlines(), 0
    previous = ""  # last non-blank line outside blocks
    while i < len(lines):
        fence = re.match(r"^```([\w-]*)\s*$", lines[i])
        if not fence:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        start, body = i, []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        assert i < len(lines), f"{DOC}:{start + 1}: unclosed code fence"
        marker = NOT_RUN.match(previous)
        blocks.append(Block(fence.group(1), body, start + 1, marker.group(1) if marker else None))
        previous = "```"
        i += 1
    return blocks


def bash_commands(lines: list[str]) -> list[str]:
    """One command per line, ``\\`` continuations joined, blank and comment lines dropped."""
    commands, pending = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        command = (pending + line).strip()
        pending = ""
        if command and not command.startswith("#"):
            commands.append(command)
    assert not pending, f"a bash block ends with a continuation: {pending!r}"
    return commands


def strip_comment(command: str) -> str:
    """``command`` without a trailing ``# comment`` (a ``#`` after whitespace, outside quotes)."""
    quote = None
    for k, char in enumerate(command):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (k == 0 or command[k - 1].isspace()):
            return command[:k].rstrip()
    return command


def sized(command: str) -> str:
    """Rule 6: the command with the TINY options of its subcommand appended."""
    command = strip_comment(command)
    words = shlex.split(command)
    if len(words) >= 2 and words[0] == "resdet" and words[1] in TINY:
        command += " " + shlex.join(["--cfg-options", *TINY[words[1]]])
    return command


def make_env(bin_dir: str) -> dict:
    shim = os.path.join(bin_dir, "resdet")
    with open(shim, "w") as fh:
        fh.write(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m resdet "$@"\n')
    os.chmod(shim, os.stat(shim).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    env = dict(os.environ)
    env.pop("RESDET_DEBUG", None)
    env.update(
        PATH=bin_dir + os.pathsep + env.get("PATH", ""),
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        MPLBACKEND="Agg",
        PYTHONUNBUFFERED="1",
    )
    return env


def run(args: list[str], shown: str, project: str, env: dict) -> Ran:
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    # the project folder is a tmp dir here; the page shows it as /path/to/my_project
    stdout, stderr = (text.replace(project, SHOWN_PROJECT) for text in (proc.stdout, proc.stderr))
    ran = Ran(shown, proc.returncode, stdout, stderr, time.perf_counter() - start)
    print(f"{ran.seconds:6.1f} s  {shown}")  # shown by pytest -s, and on a failure
    return ran


def check_quoted_output(quoted: Block, ran: Ran) -> bool:
    """Rule 5; returns whether the quote was an expected error."""
    lines = [line.strip() for line in quoted.lines if line.strip() and line.strip() != "..."]
    assert lines, f"{DOC}:{quoted.line_no}: empty text block"
    errors = [line for line in lines if ERROR_LINE.match(line)]
    where = f"{DOC}:{quoted.line_no}"
    if errors:
        assert len(errors) == 1, f"{where}: one quoted error per command, got {errors}"
        stderr_lines = [line.strip() for line in ran.stderr.splitlines() if line.strip()]
        assert ran.returncode == 2, f"{where}: the command should fail with exit code 2\n{ran.describe()}"
        assert stderr_lines and stderr_lines[-1] == errors[0], (
            f"{where}: the quoted error is not what resdet printed\nquoted:  {errors[0]}\n"
            f"printed: {stderr_lines[-1] if stderr_lines else '(nothing)'}\n{ran.describe()}"
        )
    for line in lines:
        assert ran.printed(line), f"{where}: quoted line not in the output:\n{line}\n{ran.describe()}"
    return bool(errors)


def test_custom_dataset_tutorial_runs_as_written(tmp_path):
    with open(DOC, encoding="utf-8") as fh:
        blocks = parse_blocks(fh.read())
    project, bin_dir = tmp_path / "my_project", tmp_path / "bin"
    (project / "data").mkdir(parents=True)
    bin_dir.mkdir()
    shutil.copytree(os.path.join(FIXTURES, "fruits_coco"), project / "data" / "fruits")
    shutil.copytree(os.path.join(FIXTURES, "bccd_voc"), project / "data" / "bccd")
    env = make_env(str(bin_dir))

    last_block: list[Ran] | None = None  # the runs of the nearest bash / python block
    pending: tuple[Block, list[Ran]] | None = None  # a block whose last command may be an expected error
    counts = dict(configs=0, python=0, commands=0, quotes=0, errors=0, skipped=0)

    def finish_pending() -> None:
        """A run block with no quoted error after it: its last command must have succeeded too."""
        nonlocal pending
        if pending is not None:
            block, runs = pending
            assert runs[-1].returncode == 0, f"{DOC}:{block.line_no}: command failed\n{runs[-1].describe()}"
            pending = None

    for block in blocks:
        if block.lang == "text":
            if last_block is None:  # quoting a block that was not run
                counts["skipped"] += 1
                continue
            was_error = check_quoted_output(block, last_block[-1])
            counts["quotes"] += 1
            counts["errors"] += was_error
            if was_error:
                pending = None  # the failure was the expected one
            continue
        if block.lang not in ("python", "bash"):
            assert block.lang == "", f"{DOC}:{block.line_no}: unexpected block language {block.lang!r}"
            continue
        finish_pending()
        if block.not_run is not None:
            counts["skipped"] += 1
            last_block = None
            continue
        assert block.lines, f"{DOC}:{block.line_no}: empty block"
        name = re.match(r"^#\s*([\w.-]+\.py)\s*$", block.lines[0]) if block.lang == "python" else None
        if name:  # rule 2: a config file
            (project / name.group(1)).write_text("\n".join(block.lines) + "\n")
            counts["configs"] += 1
            continue
        if block.lang == "python":  # rule 3
            code = "\n".join(block.lines) + "\n"
            runs = [run([sys.executable, "-c", code], f"python <block at line {block.line_no}>", str(project), env)]
            counts["python"] += 1
        else:  # rule 4
            runs = []
            commands = bash_commands(block.lines)
            assert commands, f"{DOC}:{block.line_no}: bash block without a command"
            for k, command in enumerate(commands):
                ran = run(["bash", "-c", sized(command)], command, str(project), env)
                runs.append(ran)
                counts["commands"] += 1
                if k < len(commands) - 1:
                    assert ran.returncode == 0, f"{DOC}:{block.line_no}: command failed\n{ran.describe()}"
        last_block = runs
        pending = (block, runs)
    finish_pending()

    # the page covers what it promises (so a block cannot silently stop being run)
    assert counts["configs"] >= 6 and counts["python"] >= 3 and counts["commands"] >= 14, counts
    assert counts["errors"] == 3 and counts["quotes"] >= 8, counts
    assert counts["skipped"] <= 4, counts

    # and its commands wrote what it says they write
    assert len(list((project / "browse").glob("*.png"))) == 3
    for name in ("my_fruits", "my_bccd"):
        work_dir = project / "work_dirs" / name
        assert {"final.pth", "train.log", "metrics.jsonl", "config.py"} <= set(os.listdir(work_dir))
    published = [p.name for p in project.glob("my_fruits-*.safetensors")]
    assert len(published) == 1 and re.fullmatch(r"my_fruits-[0-9a-f]{8}\.safetensors", published[0]), published
    assert (project / "out" / "4.jpg").is_file()
    assert "training MaskRCNN" in (project / "work_dirs" / "my_fruits" / "train.log").read_text()
    # load-time reports reach train.log too (the page says so of the filtered-images count)
    assert "1 invalid boxes dropped" in (project / "work_dirs" / "my_bccd" / "train.log").read_text()


def test_tutorial_rules():
    """The parsing and sizing rules the run relies on."""
    text = (
        "intro\n<!-- not run: needs a file -->\n```python\n# a.py\nx = 1\n```\n\n```bash\nresdet eval a.py \\\n"
        "  ckpt --metric mAP@0.5   # note\n```\n```text\nout\n```\n"
    )
    blocks = parse_blocks(text)
    assert [(b.lang, b.not_run) for b in blocks] == [("python", "needs a file"), ("bash", None), ("text", None)]
    commands = bash_commands(blocks[1].lines)
    assert commands == ["resdet eval a.py    ckpt --metric mAP@0.5   # note"]
    resized = sized(commands[0])
    assert "# note" not in resized and resized.startswith("resdet eval a.py")
    assert shlex.split(resized)[-len(TINY["eval"]) - 1 :] == ["--cfg-options", *TINY["eval"]]
    assert sized("(cd data && resdet train-det x.py)") == "(cd data && resdet train-det x.py)"
    for options in TINY.values():  # KEY=VALUE pairs whose values parse the way --cfg-options reads them
        for option in options:
            key, value = option.split("=", 1)
            assert re.fullmatch(r"[a-z_]+(\.[a-z_]+)*", key), option
            parse_option_value(key, value)
    assert strip_comment('resdet eval x --metric "a#b"  # c') == 'resdet eval x --metric "a#b"'
