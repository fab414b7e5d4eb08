"""deepvideo serve: a real uvicorn server on 127.0.0.1 answering real uploads like predict_video,
bad uploads with one-line errors (and staying up), 503 past the queue, one model call at a time."""

from __future__ import annotations

import argparse
import glob
import http.client
import json
import os
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
import torch

from deepvideo.cli import serve as serve_cli
from deepvideo.cli.options import UsageError
from deepvideo.deploy import SERVE_EXTRA, load_network
from deepvideo.deploy.serve import create_app, running_server, serve
from deepvideo.engine.predict import predict_video
from deepvideo.engine.recipe import Recipe

from conftest import real_videos

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 never through a proxy


def call(url: str, data: Any = None, method: str | None = None, **headers: str) -> tuple[int, dict[str, Any]]:
    """The status and JSON answer of one request (``data``: bytes, or an iterable of bytes sent chunked)."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with OPENER.open(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def post(base: str, data: Any, name: str | None = None) -> tuple[int, dict[str, Any]]:
    query = f"?{urllib.parse.urlencode({'name': name})}" if name else ""
    return call(f"{base}/predict{query}", data, "POST", **{"Content-Type": "application/octet-stream"})


def assert_healthy(base: str, max_queue: int = 4) -> None:
    assert call(f"{base}/health") == (200, {"status": "ok", "busy": 0, "max_queue": max_queue})


def uploads_left() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "deepvideo-upload-*")))


@pytest.fixture(scope="module")
def checkpoint(small3d_checkpoint):
    return small3d_checkpoint


@pytest.fixture(scope="module")
def loaded(checkpoint):
    """``(recipe, network)`` of the checkpoint, as deepvideo serve loads it."""
    return load_network(checkpoint)


def test_uploads_are_answered_like_predict_video(loaded, make_video):
    recipe, network = loaded
    video = make_video("clip.mp4")  # 24 frames 64 x 64
    want = predict_video(network, video, recipe, step=3, topk=2)
    with running_server(create_app(network, recipe, step=3, topk=2)) as base:
        status, got = post(base, video.read_bytes(), name="my clip.mp4")
        assert status == 200, got
        assert got == {**want, "video": "my clip.mp4"} and len(got["windows"]) >= 6
        status, got = call(f"{base}/predict", video.read_bytes(), "PUT")  # curl -T
        assert status == 200 and got == {**want, "video": "upload"}
        assert call(f"{base}/model") == (200, {"model": "small3d", "classes": ["down", "left", "up"],
                                               "recipe": recipe.to_dict()})
        assert_healthy(base)


def test_a_real_video_is_answered_like_predict_video(loaded):
    videos = real_videos()
    if not videos:
        pytest.skip("no sample videos in ../shared/data/videos")
    video = min(videos, key=lambda path: path.stat().st_size)
    recipe, network = loaded
    want = predict_video(network, video, recipe)
    with running_server(create_app(network, recipe)) as base:
        status, got = post(base, video.read_bytes(), name=video.name)
    assert status == 200, got
    assert got == {**want, "video": video.name}


def test_bad_uploads_get_one_line_errors_and_the_server_stays_up(loaded, make_video, tmp_path):
    recipe, network = loaded
    video = make_video("clip.mp4").read_bytes()
    before = uploads_left()
    with running_server(create_app(network, recipe, max_upload_bytes=20_000)) as base:
        text = b"name,label\nclip.mp4,left\n" * 20
        cases = [(b"", None, 400, ["empty upload: send the video file as the request body"]),
                 (video[:len(video) // 2], "half.mp4", 422, ["half.mp4: not a readable video (", "moov atom"]),
                 (text, "notes.mp4", 422, ["notes.mp4: not a readable video (Invalid data"]),
                 (b"\0" * 20_001, None, 413, ["upload of 20001 bytes is over the limit of 20000 bytes"]),
                 (iter([video, b"\0" * 20_000]), None, 413, ["upload is over the limit of 20000 bytes"])]  # chunked
        for data, name, code, fragments in cases:
            status, got = post(base, data, name)
            assert status == code and list(got) == ["detail"] and "\n" not in got["detail"], (name, got)
            assert all(fragment in got["detail"] for fragment in fragments), got
            assert_healthy(base)
        # a Content-Length over the limit is answered before any of the body is sent
        host, port = urllib.parse.urlsplit(base).netloc.split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.putrequest("POST", "/predict")
        connection.putheader("Content-Length", str(10**10))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413 and "over the limit" in json.loads(response.read())["detail"]
        connection.close()
        assert post(base, video)[0] == 200
        assert_healthy(base)
    assert uploads_left() == before  # every temporary upload removed


class Gate:
    """A network that waits for ``release`` before each call and records how many calls overlap."""

    def __init__(self, network: Any) -> None:
        self.network, self.release = network, threading.Event()
        self.running = self.most = 0
        self.lock = threading.Lock()

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            self.release.wait(timeout=30)
            return self.network(clips)
        finally:
            with self.lock:
                self.running -= 1


def wait_busy(base: str, count: int) -> None:
    deadline = time.monotonic() + 20
    while call(f"{base}/health")[1]["busy"] < count:
        assert time.monotonic() < deadline, "requests were not admitted"
        time.sleep(0.02)


def test_a_request_past_the_queue_gets_503_at_once(loaded, make_video):
    recipe, network = loaded
    gate = Gate(network)
    video = make_video("clip.mp4").read_bytes()
    answers: list[tuple[int, dict[str, Any]]] = []
    with running_server(create_app(gate, recipe, max_queue=1)) as base:
        first = threading.Thread(target=lambda: answers.append(post(base, video)))
        first.start()
        wait_busy(base, 1)  # admitted, and blocked inside the network
        start = time.monotonic()
        status, got = post(base, video)
        assert status == 503 and got["detail"].startswith("busy: 1 requests are running or waiting")
        assert time.monotonic() - start < 5
        assert call(f"{base}/health") == (200, {"status": "ok", "busy": 1, "max_queue": 1})
        gate.release.set()
        first.join(timeout=30)
        assert answers[0][0] == 200 and answers[0][1]["top"]
        assert_healthy(base, max_queue=1)


def test_admitted_requests_share_one_model_one_call_at_a_time(loaded, make_video):
    recipe, network = loaded
    gate = Gate(network)
    video = make_video("clip.mp4").read_bytes()
    answers: list[tuple[int, dict[str, Any]]] = []
    with running_server(create_app(gate, recipe, max_queue=3)) as base:
        clients = [threading.Thread(target=lambda: answers.append(post(base, video))) for _ in range(3)]
        for client in clients:
            client.start()
        wait_busy(base, 3)
        gate.release.set()
        for client in clients:
            client.join(timeout=30)
    assert [status for status, _ in answers] == [200] * 3 and gate.most == 1
    assert answers[0][1] == answers[1][1] == answers[2][1]


def test_a_failing_network_is_a_one_line_500_and_the_server_stays_up(loaded, make_video):
    recipe, network = loaded

    def broken(clips: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("out of memory\nmore lines")

    video = make_video("clip.mp4").read_bytes()
    with running_server(create_app(broken, recipe)) as base:
        assert post(base, video) == (500, {"detail": "RuntimeError: out of memory"})
        assert_healthy(base)


def test_limits_and_the_modality_are_checked(loaded, checkpoint):
    recipe, network = loaded
    with pytest.raises(ValueError, match="max_queue must be at least 1, got 0"):
        create_app(network, recipe, max_queue=0)
    flow = Recipe.from_dict({**recipe.to_dict(), "modality": "flow"})
    with pytest.raises(ValueError, match="a small3d model of the flow modality cannot be served"):
        create_app(network, flow)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port} "):
            serve(create_app(network, recipe), port=port)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="deepvideo")
    serve_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["serve", *argv])


def test_the_command_serves_the_checkpoint_with_its_options(capsys, monkeypatch, checkpoint, make_video):
    video = make_video("clip.mp4").read_bytes()  # 7 KB
    seen = {}

    def serve_once(app, host, port, ready):  # instead of serving until Ctrl+C
        with running_server(app, host, port) as base:
            ready(base)
            seen.update(health=call(f"{base}/health"), small=post(base, video), large=post(base, video * 2))

    monkeypatch.setattr("deepvideo.deploy.serve.serve", serve_once)
    args = parse(str(checkpoint), "--port", "0", "--max-upload-mb", "0.01", "--max-queue", "2", "--top", "2")
    assert (args.host, args.backend, args.step, args.batch_size, args.device) == ("127.0.0.1", None, None, 4, "cpu")
    args.func(args)
    out = capsys.readouterr().out
    assert out.startswith(f"{checkpoint}: small3d, 3 classes; POST videos to http://127.0.0.1:")
    assert out.count("\n") == 1 and "/predict (GET " in out
    assert seen["health"] == (200, {"status": "ok", "busy": 0, "max_queue": 2})
    assert seen["small"][0] == 200 and len(seen["small"][1]["top"]) == 2
    assert seen["large"] == (413, {"detail": f"upload of {2 * len(video)} bytes is over the limit of 10485 bytes"})
    for bad in (["--port", "70000"], ["--max-queue", "0"], ["--max-upload-mb", "-1"]):
        with pytest.raises(SystemExit):
            parse(str(checkpoint), *bad)


def test_missing_fastapi_names_the_extra(monkeypatch, loaded, checkpoint):
    recipe, network = loaded
    monkeypatch.setitem(sys.modules, "fastapi", None)  # import now raises ImportError
    with pytest.raises(ImportError) as info:
        create_app(network, recipe)
    assert str(info.value) == f"deepvideo serve needs the fastapi package: {SERVE_EXTRA}"
    args = parse(str(checkpoint))
    with pytest.raises(UsageError) as info:
        args.func(args)
    assert str(info.value) == f"deepvideo serve needs the fastapi package: {SERVE_EXTRA}"
