"""Weights by name (``torchvision://NAME``): download from a local HTTP server, verify, convert
once, cache; every failure (wrong hash, 404, timeout, truncated body, no server) is one line and
leaves nothing in the cache. No internet: the server runs on 127.0.0.1 in a thread."""

import hashlib
import http.server
import io
import os
import socket
import threading
import time

import pytest
import torch
import torchvision

from resdet.apis import init_model
from resdet.apis.model import get_config
from resdet.cli import main as cli_main
from resdet.models.converters import (
    CONVERTERS,
    MANIFEST,
    DownloadError,
    WeightsEntry,
    cache_dir,
    converted_path,
    loading,
    resolve_weights,
)
from resdet.models.detectors.init_weights import init_from_classifier
from resdet.registry import MODELS


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files[name] = (mode, bytes)``; modes: ok, sleep, truncated."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.requests.append(self.path)
        name = self.path.rsplit("/", 1)[-1]
        if name not in self.server.files:
            self.send_error(404, "Not Found")
            return
        mode, body = self.server.files[name]
        if mode == "sleep":
            time.sleep(1.5)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) + (4096 if mode == "truncated" else 0)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def tv_resnet18():
    """torchvision's resnet18 with random weights (seeded), as the bytes of its state_dict file."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return model, buffer.getvalue()


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.files, httpd.requests = {}, []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def hub(tmp_path, monkeypatch, server, tv_resnet18):
    """A fresh TORCH_HOME, the server as download base, and test entries in the manifest."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("RESDET_WEIGHTS_URL", f"http://127.0.0.1:{server.server_port}/models/")
    body = tv_resnet18[1]
    good = f"test_resnet18-{hashlib.sha256(body).hexdigest()[:10]}.pth"
    server.files.clear()
    server.requests.clear()
    server.files[good] = ("ok", body)
    entries = {
        "test_resnet18": good,
        "test_badhash": "test_badhash-0123abcd.pth",
        "test_missing": "test_missing-0123abcd.pth",
        "test_slow": good.replace("test_", "slow_"),
        "test_cut": good.replace("test_", "cut_"),
    }
    server.files[entries["test_badhash"]] = ("ok", body)
    server.files[entries["test_slow"]] = ("sleep", body)
    server.files[entries["test_cut"]] = ("truncated", body[: len(body) // 2])
    for name, file in entries.items():
        monkeypatch.setitem(
            MANIFEST,
            name,
            WeightsEntry(
                name=name,
                file=file,
                arch="resnet18",
                config="resnet18",
                size_mb=len(body) / 1e6,
                description="test entry",
            ),
        )
    return server


def _cache_files():
    return sorted(os.listdir(cache_dir())) if os.path.isdir(cache_dir()) else []


def test_download_verify_convert_and_reuse(hub, tv_resnet18, monkeypatch):
    model = init_model("resnet18", "torchvision://test_resnet18")
    images = torch.randn(2, 3, 64, 64)  # float input: taken as normalised by both
    with torch.no_grad():
        assert (model(images) - tv_resnet18[0](images)).abs().max().item() <= 1e-4
    assert len(hub.requests) == 1
    entry = MANIFEST["test_resnet18"]
    assert _cache_files() == sorted([entry.file, os.path.basename(converted_path(entry))])
    assert cache_dir().startswith(os.environ["TORCH_HOME"])

    calls = []
    with monkeypatch.context() as patch:
        patch.setattr(loading, "convert_checkpoint", lambda *a, **k: calls.append(a))
        assert resolve_weights("torchvision://test_resnet18") == converted_path(entry)  # converted cache
    assert len(hub.requests) == 1 and not calls
    os.remove(converted_path(entry))  # converted again from the downloaded file, not fetched again
    assert resolve_weights("test_resnet18") == converted_path(entry)
    assert os.path.isfile(converted_path(entry)) and len(hub.requests) == 1


def test_detector_init_cfg_takes_a_name(hub, tv_resnet18):
    torch.manual_seed(1)
    model = MODELS.build(
        dict(get_config("frcnn_r50_c4_bccd", {"model.backbone.depth": 18, "model.roi_heads.box_head.depth": 18}).model)
    )
    report = init_from_classifier(model, "torchvision://test_resnet18", src="resdet_cls")
    assert not report["missing"] and not report["mismatched"]
    expected = tv_resnet18[0].state_dict()
    assert torch.equal(model.backbone.conv1.weight, expected["conv1.weight"])
    assert torch.equal(model.roi_heads.box_head.res5[0].conv1.weight, expected["layer4.0.conv1.weight"])


@pytest.mark.parametrize(
    "name, match",
    [
        ("test_badhash", r"does not match its hash \(SHA-256 [0-9a-f]{16}\.\.\., expected 0123abcd"),
        ("test_missing", r"HTTP 404"),
        ("test_cut", r"cut off after \d+ of \d+ bytes"),
    ],
)
def test_failed_download_leaves_nothing(hub, name, match):
    with pytest.raises(DownloadError, match=match) as info:
        resolve_weights("torchvision://" + name)
    assert "\n" not in str(info.value) and "/models/" + MANIFEST[name].file in str(info.value)
    assert _cache_files() == []


def test_timeout_leaves_nothing(hub):
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"timed out after 0.3 s") as info:
        resolve_weights("torchvision://test_slow", timeout=0.3)
    assert time.monotonic() - start < 1.4
    assert "RESDET_DOWNLOAD_TIMEOUT" in str(info.value)
    assert _cache_files() == []


def test_offline_names_url_and_cache_path(hub, monkeypatch, capsys):
    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("RESDET_WEIGHTS_URL", f"http://127.0.0.1:{port}/models")
    entry = MANIFEST["test_resnet18"]
    assert cli_main(["weights", "--download", "test_resnet18"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("resdet weights: error: cannot reach ")
    assert f"http://127.0.0.1:{port}/models/{entry.file}" in err
    assert f"put it at {os.path.join(cache_dir(), entry.file)}" in err
    assert _cache_files() == []


def test_cli_list_and_download(hub, capsys):
    assert cli_main(["weights", "--list"]) == 0
    out = capsys.readouterr().out
    assert "torchvision://fasterrcnn_resnet50_fpn_coco  frcnn_r50_fpn_tv" in out
    assert "torchvision://test_resnet18" in out and cache_dir() in out
    line = next(x for x in out.splitlines() if "test_resnet18" in x)
    assert line.endswith(" no")
    assert cli_main(["weights", "--download", "torchvision://test_resnet18", "--no-convert"]) == 0
    assert capsys.readouterr().out.strip() == os.path.join(cache_dir(), MANIFEST["test_resnet18"].file)
    cli_main(["weights", "--list"])
    line = next(x for x in capsys.readouterr().out.splitlines() if "test_resnet18" in x)
    assert line.endswith(" downloaded")
    assert cli_main(["weights", "--download", "nope"]) == 2
    assert "unknown weights 'nope'; known names: torchvision://fasterrcnn" in capsys.readouterr().err


def _class_slots(entry):
    """A stand-in for the real file's head: the tensors model_cfg reads (shapes only)."""
    if entry.classes is not None:
        return {"roi_heads.box_predictor.cls_score.weight": torch.empty(91, 1024, device="meta")}
    return (
        {"fc.weight": torch.empty(1000, 1, device="meta")}
        if entry.arch.startswith("resnet")
        else {"classifier.6.weight": torch.empty(1000, 1, device="meta")}
    )


@pytest.mark.parametrize("name", [n for n in MANIFEST if not n.startswith("test_")])
def test_real_manifest_entry_fits_its_config(name):
    """The converted file's model (the converter's config) has exactly the parameters of the
    config the entry names, so it loads strictly; detector class names are the config's."""
    entry = MANIFEST[name]
    assert entry.file.startswith(name.split("_coco")[0]) and len(entry.hash_prefix) >= 8
    assert entry.arch in CONVERTERS["torchvision"]
    cfg = get_config(entry.config)
    with torch.device("meta"):
        named = MODELS.build(cfg.model.to_dict())
        converted = MODELS.build(CONVERTERS["torchvision"][entry.arch].model_cfg(_class_slots(entry)))
    want = {k: tuple(v.shape) for k, v in named.state_dict().items() if not k.endswith("num_batches_tracked")}
    have = {k: tuple(v.shape) for k, v in converted.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert want == have
    if entry.classes is not None:
        assert tuple(cfg.classes) == entry.classes


def test_entry_points_take_a_name(hub, tmp_path, tv_resnet18):
    """``resdet export`` reads the named file's meta; training's up-front check of
    ``model.init_cfg`` lets a name through (it is fetched when the weights are loaded)."""
    from resdet.apis.detect import check_init_checkpoints
    from resdet.utils.config import ConfigError

    check_init_checkpoints(get_config("frcnn_r101_voc0712", {"model.init_cfg.checkpoint": "torchvision://resnet101"}))
    with pytest.raises(ConfigError, match="does not exist"):
        check_init_checkpoints(get_config("frcnn_r101_voc0712", {"model.init_cfg.checkpoint": "nope.pth"}))
    out = tmp_path / "r18.pt2"
    assert (
        cli_main(["export", "resnet18", "torchvision://test_resnet18", "--format", "torch-export", "--out", str(out)])
        == 0
    )
    program = torch.export.load(str(out)).module()
    images = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        reference = init_model("resnet18", "torchvision://test_resnet18")(images)
        assert torch.allclose(program(images), reference, atol=1e-4)
    assert len(hub.requests) == 1  # one download for the export and the reference
