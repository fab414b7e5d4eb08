"""Clip samplers: which frames of a video make up each clip.

A sampler maps a video length to frame indices: ``sampler(num_frames, rng)`` returns a
``(K, clip_len)`` int64 array, one row per clip, every index in ``[0, num_frames)``.
Pass a row to :meth:`deepvideo.io.VideoReader.read` to get ``(clip_len, H, W, 3)`` uint8
frames.

A clip of ``clip_len`` frames at frame stride ``stride`` spans
``(clip_len - 1) * stride + 1`` frames of the video (16 frames at stride 6 from a 30 fps
video cover 3.0 s at 5 fps).  A video shorter than that span gets one clip starting at
frame 0 (every clip starts there), completed by the ``short`` policy:

* ``"loop"``: indices wrap around modulo ``num_frames`` (the video plays again);
* ``"pad"``: indices past the end repeat the last frame.

Samplers:

* :class:`RandomClipSampler` (training): one clip, start uniform over every valid start.
* :class:`UniformClipSampler` (testing): ``num_clips`` evenly spaced clips from the first
  to the last valid start; deterministic.
* :class:`SlidingWindowSampler`: a window every ``step`` frames, the last one aligned to
  the end of the video; the number of clips depends on the video length.
* :class:`SegmentSampler`: TSN's segment-based sampling (Wang et al., "Temporal Segment
  Networks: Towards Good Practices for Deep Action Recognition", ECCV 2016).
"""

from __future__ import annotations

import numpy as np

__all__ = ["SHORT_POLICIES", "ClipSampler", "RandomClipSampler", "SegmentSampler",
           "SlidingWindowSampler", "UniformClipSampler", "ensure_rng", "positive_int"]

SHORT_POLICIES = ("loop", "pad")


def positive_int(name: str, value: object) -> int:
    """``value`` as an int >= 1, or ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def ensure_rng(rng: np.random.Generator | None) -> np.random.Generator:
    """``rng``, or a generator seeded from fresh entropy when None."""
    return np.random.default_rng() if rng is None else rng


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


class ClipSampler:
    """Base class: frame indices for the clips of a video.

    A clip is made of ``P`` snippets of ``L`` frames each (``P = 1`` except for
    :class:`SegmentSampler`); a subclass chooses the snippets' start frames and this class
    expands them to indices and applies the ``short`` policy.

    Attributes:
        clip_len: frames per clip.
        stride: frame stride inside a snippet (temporal subsampling).
        short: ``"loop"`` or ``"pad"``, the policy for videos shorter than one snippet.
        num_clips: clips per video, or None when that depends on the video length.
        span: frames of the video one snippet covers, ``(L - 1) * stride + 1``.

    Args:
        clip_len, stride, short: as above.
        snippet_len: ``L``, frames per snippet (default ``clip_len``: one snippet per clip).
    """

    num_clips: int | None

    def __init__(self, clip_len: int, stride: int = 1, short: str = "loop",
                 snippet_len: int | None = None) -> None:
        self.clip_len = positive_int("clip_len", clip_len)
        self.stride = positive_int("stride", stride)
        if short not in SHORT_POLICIES:
            raise ValueError(f"short must be one of {SHORT_POLICIES}, got {short!r}")
        self.short = short
        self._snippet_len = self.clip_len if snippet_len is None else snippet_len
        self.span = (self._snippet_len - 1) * self.stride + 1

    def __call__(self, num_frames: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """Frame indices ``(K, clip_len)`` int64 in ``[0, num_frames)``, one row per clip.

        Args:
            num_frames: length of the video in frames (>= 1).
            rng: randomness for the random samplers; None draws fresh entropy.
                Deterministic samplers ignore it.
        """
        num_frames = positive_int("num_frames", num_frames)
        last_start = max(num_frames - self.span, 0)
        starts = np.asarray(self._starts(last_start, rng), dtype=np.int64)  # (K, P)
        offsets = np.arange(self._snippet_len, dtype=np.int64) * self.stride
        indices = (starts[:, :, None] + offsets).reshape(len(starts), -1)
        if num_frames < self.span:
            if self.short == "loop":
                indices %= num_frames
            else:
                np.minimum(indices, num_frames - 1, out=indices)
        return indices

    def _starts(self, last_start: int, rng: np.random.Generator | None) -> np.ndarray:
        """Snippet start frames ``(K, P)`` in ``[0, last_start]`` (0 for a short video)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = {k: v for k, v in vars(self).items() if not k.startswith("_") and k != "span"}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in fields.items())})"


class RandomClipSampler(ClipSampler):
    """Training: one clip whose start is uniform over ``[0, num_frames - span]``."""

    def __init__(self, clip_len: int, stride: int = 1, short: str = "loop") -> None:
        super().__init__(clip_len, stride, short)
        self.num_clips = 1

    def _starts(self, last_start: int, rng: np.random.Generator | None) -> np.ndarray:
        return ensure_rng(rng).integers(0, last_start + 1, size=(1, 1))


class UniformClipSampler(ClipSampler):
    """Testing: ``num_clips`` clips with evenly spaced starts; deterministic.

    The first clip starts at frame 0 and the last one ends on the last frame, so the clips
    cover the video; starts are rounded half up.  With ``num_clips=1`` it is the centre
    clip.  Clips overlap when the video is shorter than ``num_clips`` spans, and a video
    shorter than one span gives ``num_clips`` copies of its single clip.
    """

    def __init__(self, clip_len: int, num_clips: int, stride: int = 1,
                 short: str = "loop") -> None:
        super().__init__(clip_len, stride, short)
        self.num_clips = positive_int("num_clips", num_clips)

    def _starts(self, last_start: int, rng: np.random.Generator | None) -> np.ndarray:
        if self.num_clips == 1:
            return _round_half_up([[last_start / 2]])
        return _round_half_up(np.linspace(0, last_start, self.num_clips)[:, None])


class SlidingWindowSampler(ClipSampler):
    """Windows every ``step`` frames (default: one span, non-overlapping) from frame 0,
    plus a last window ending on the last frame when the steps do not land there, so the
    whole video is covered.  ``num_clips`` is None: it depends on the video length.
    """

    def __init__(self, clip_len: int, stride: int = 1, step: int | None = None,
                 short: str = "loop") -> None:
        super().__init__(clip_len, stride, short)
        self.step = self.span if step is None else positive_int("step", step)
        self.num_clips = None

    def _starts(self, last_start: int, rng: np.random.Generator | None) -> np.ndarray:
        starts = np.arange(0, last_start + 1, self.step)
        if starts[-1] != last_start:
            starts = np.append(starts, last_start)
        return starts[:, None]


class SegmentSampler(ClipSampler):
    """TSN sampling (Wang et al., ECCV 2016): one snippet per segment, all in one clip.

    The valid snippet starts ``[0, num_frames - span]`` are split into ``num_segments``
    equal parts (for one-frame snippets: the video itself in equal segments); each part
    gives one snippet of ``frames_per_segment`` frames at frame stride ``stride``, at a
    uniform random start in training (``random=True``) or at the part's centre otherwise.
    Returns ``(1, num_segments * frames_per_segment)``, snippets in temporal order.
    """

    def __init__(self, num_segments: int, frames_per_segment: int = 1, stride: int = 1,
                 random: bool = True, short: str = "loop") -> None:
        self.num_segments = positive_int("num_segments", num_segments)
        self.frames_per_segment = positive_int("frames_per_segment", frames_per_segment)
        super().__init__(self.num_segments * self.frames_per_segment, stride, short,
                         snippet_len=self.frames_per_segment)
        self.random = bool(random)
        self.num_clips = 1

    def _starts(self, last_start: int, rng: np.random.Generator | None) -> np.ndarray:
        n, s = last_start + 1, self.num_segments  # n valid starts split into s parts
        if not self.random:
            return np.floor((np.arange(s) + 0.5) * n / s).astype(np.int64)[None]
        lo = np.arange(s) * n // s
        hi = np.maximum((np.arange(s) + 1) * n // s, lo + 1)
        return ensure_rng(rng).integers(lo, hi)[None]
