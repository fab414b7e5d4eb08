"""Video I/O: decoding with exact random access, frame folders, packed videos, encoding."""

from deepvideo.io.decode import VideoDecodeError, VideoReader, VideoTooShortError, read_video
from deepvideo.io.encode import write_video
from deepvideo.io.frames import FrameFolderReader, is_frame_folder
from deepvideo.io.open import open_video
from deepvideo.io.packed import PACKED_SUFFIX, PackedReader, is_packed, write_packed

__all__ = ["FrameFolderReader", "PACKED_SUFFIX", "PackedReader", "VideoDecodeError", "VideoReader",
           "VideoTooShortError", "is_frame_folder", "is_packed", "open_video", "read_video", "write_packed",
           "write_video"]
