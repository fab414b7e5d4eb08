"""Video I/O: decoding with exact random access, and encoding."""

from deepvideo.io.decode import VideoDecodeError, VideoReader, read_video
from deepvideo.io.encode import write_video

__all__ = ["VideoDecodeError", "VideoReader", "read_video", "write_video"]
