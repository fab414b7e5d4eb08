"""deepvideo stream: the ring buffer's windows and drop counts, the exact clips the network
sees, streams that end or break off (last window flushed), the annotated video, and
one-line errors."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
import torch

from deepvideo.cli import main
from deepvideo.deploy.stream import ClipBuffer, run_stream
from deepvideo.engine.checkpoint import save_checkpoint
from deepvideo.engine.recipe import Recipe
from deepvideo.io import VideoReader, read_video
from deepvideo.io.draw import draw_label
from deepvideo.io.stream import LiveFrame, LiveSource

from conftest import free_port, one_line_error

RECIPE = Recipe(model="small3d", classes=["down", "left", "up"], model_kwargs={"widths": [4, 8]}, clip_len=4,
                frame_stride=2, size=32, resize=36)


def frame(index: int) -> LiveFrame:
    return LiveFrame(index, index / 10, time.monotonic(), np.full((2, 2, 3), index, np.uint8))


def test_clip_buffer_keeps_the_newest_clip_and_counts_due_windows():
    buffer = ClipBuffer(clip_len=3, stride=2, step=2)
    for i in range(5):  # kept: 0, 2, 4 -> the first window ends at frame 4
        buffer.put(frame(i))
    assert (buffer.frames, buffer.sampled, buffer.due) == (5, 3, 1)
    number, window = buffer.take(0)
    assert number == 1 and [f.index for f in window] == [0, 2, 4]
    for i in range(5, 13):  # kept 6, 8, 10, 12: windows end at 8 and 12 (step 2)
        buffer.put(frame(i))
    number, window = buffer.take(1)  # the newest only: the window ending at 8 was dropped
    assert number == 3 and [f.index for f in window] == [8, 10, 12]
    buffer.close()
    assert buffer.take(3) is None


def test_take_sleeps_until_a_window_is_due_and_close_flushes():
    buffer = ClipBuffer(clip_len=2)
    got = []
    consumer = threading.Thread(target=lambda: got.append(buffer.take(0)))
    consumer.start()
    buffer.put(frame(0))
    consumer.join(0.2)
    assert consumer.is_alive() and not got  # asleep: one frame is no window
    buffer.put(frame(1))
    consumer.join(5)
    assert got[0][0] == 1 and [f.index for f in got[0][1]] == [0, 1]
    buffer.put(frame(2))
    buffer.close()
    assert buffer.take(1)[0] == 2 and buffer.take(2) is None  # the last window is still taken


class Recorder(torch.nn.Module):
    """A network that remembers its input clips and can be slowed down."""

    def __init__(self, model: torch.nn.Module, delay: float = 0.0) -> None:
        super().__init__()
        self.model, self.delay, self.clips = model, delay, []

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        self.clips.append(clips.clone())
        time.sleep(self.delay)
        return self.model(clips)


def test_each_prediction_is_the_network_on_the_clip_that_ends_at_its_frame(make_video):
    path = make_video("clip.mp4", fps=25)  # 24 frames: windows of 4 frames at stride 2 end at 6, 8, ..., 22
    torch.manual_seed(0)
    network = Recorder(RECIPE.build_model().eval())
    predictions = []
    with LiveSource(path, realtime=True) as source:
        summary = run_stream(network, RECIPE, source, predictions.append, topk=3, average=2)
    frames = read_video(path)
    transform = RECIPE.transform(train=False)
    assert summary.frames == 24 and summary.sampled == 12 and summary.due == 9
    assert summary.windows + summary.dropped == summary.due and summary.windows == len(predictions)
    assert predictions[-1]["window"] == summary.due and predictions[-1]["frame"] == 22  # the last window flushed
    probs = []
    for prediction, clip in zip(predictions, network.clips):
        end = prediction["frame"]
        assert end == 6 + 2 * (prediction["window"] - 1)
        assert prediction["time"] == pytest.approx(end / 25, abs=1e-3) and prediction["latency"] >= 0
        expected = transform(frames[end - 6:end + 1:2], np.random.default_rng(0))
        torch.testing.assert_close(clip[0], expected)
        with torch.no_grad():
            probs.append(torch.softmax(network.model(expected[None]), 1)[0].numpy())
        mean = np.mean(probs[-2:], axis=0)  # --average 2
        assert [t["label"] for t in prediction["top"]] == [RECIPE.classes[i] for i in np.argsort(-mean)]
        assert [t["prob"] for t in prediction["top"]] == pytest.approx(np.sort(mean)[::-1], abs=1e-5)


def test_a_busy_network_drops_windows_and_never_queues(make_video):
    path = make_video("clip.mp4", fps=50)
    network = Recorder(RECIPE.build_model().eval(), delay=0.15)
    predictions = []
    with LiveSource(path, realtime=True) as source:
        summary = run_stream(network, RECIPE, source, predictions.append)
    assert summary.dropped > 0 and summary.windows + summary.dropped == summary.due == 9
    assert summary.dropped_share == pytest.approx(summary.dropped / 9, abs=1e-4)
    assert [p["dropped"] for p in predictions] == [p["window"] - i for i, p in enumerate(predictions, 1)]
    assert predictions[-1]["window"] == 9  # the newest window, after the stream ended


def test_a_stream_that_breaks_off_ends_cleanly_with_its_last_window(make_video, serve_bytes):
    noise = np.random.default_rng(0).integers(0, 256, (48, 64, 64, 3), dtype=np.uint8)
    data = make_video("clip.mkv", frames=noise, fps=25).read_bytes()
    predictions = []
    with LiveSource(serve_bytes(data, cut=len(data) // 2), timeout=5) as source:
        summary = run_stream(RECIPE.build_model(), RECIPE, source, predictions.append)
    assert 0 < summary.frames < 48 and summary.stopped.startswith("http://127.0.0.1:")
    assert "broke off" in str(summary) and predictions[-1]["window"] == summary.due > 0


def test_draw_label_draws_on_a_copy():
    image = np.zeros((48, 64, 3), np.uint8)
    drawn = draw_label(image, "left 0.91")
    assert not image.any() and drawn[:12, :40].any() and not drawn[-10:].any()
    np.testing.assert_array_equal(draw_label(image, ""), image)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("run") / "best.pt",
                           {"model": RECIPE.build_model().state_dict(), "recipe": RECIPE.to_dict()})


def test_cli_prints_json_lines_and_writes_the_labelled_video(capsys, checkpoint, make_video, tmp_path):
    path = make_video("clip.mp4", fps=25)
    out = tmp_path / "labelled.mp4"
    code = main(["stream", str(path), "--checkpoint", str(checkpoint), "--realtime", "--top", "2",
                 "--video-out", str(out)])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert lines and all(set(line) == {"frame", "time", "latency", "window", "dropped", "top"} for line in lines)
    assert all(len(line["top"]) == 2 for line in lines) and lines[-1]["frame"] == 22
    assert stderr.startswith(f"deepvideo stream: {path}: 24 frames, {len(lines)} windows predicted, ")
    assert stderr.rstrip().endswith("; end of stream")
    with VideoReader(out) as reader:
        assert reader.num_frames == 24 and (reader.width, reader.height) == (64, 64)
        first, last = reader.read([0, 23])
    assert np.abs(first.astype(int) - read_video(path)[0]).mean() < 6  # no label before the first window
    assert last[:2, :30].mean() > 200 and last[30:].mean() < 160  # the label's white band, at the top only


def test_cli_too_short_a_stream_warns(capsys, checkpoint, make_video):
    path = make_video("short.mp4", frames=np.zeros((5, 32, 32, 3), np.uint8))
    assert main(["stream", str(path), "--checkpoint", str(checkpoint)]) == 0
    stdout, stderr = capsys.readouterr()
    assert stdout == "" and "no prediction (the stream ended after 5 frames, before one clip of 4 frames " \
        "at stride 2)" in stderr


def test_cli_errors_are_one_line(capsys, checkpoint, tmp_path):
    url = f"rtsp://127.0.0.1:{free_port()}/live"
    cases = [(["9"], "9: no such camera (/dev/video9 does not exist)"),
             ([url, "--timeout", "2"], f"{url}: cannot open the url"),
             ([str(tmp_path / "gone.mp4")], "gone.mp4: no such file"),
             ([str(tmp_path / "gone.mp4"), "--video-out", str(tmp_path / "x.gif")], "--video-out")]
    for argv, message in cases:
        code = main(["stream", *argv, "--checkpoint", str(checkpoint)])
        _, err = capsys.readouterr()
        assert code == 2
        one_line_error(err, message, command="stream")
