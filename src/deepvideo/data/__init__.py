"""Clip pipeline: samplers (which frames), transforms (uint8 frames -> clip tensors), datasets."""

from deepvideo.data.datasets import VideoDataset, folder_dataset, hmdb51, kinetics_csv, list_dataset, ucf101
from deepvideo.data.sampling import (
                                     ClipSampler,
                                     RandomClipSampler,
                                     SegmentSampler,
                                     SlidingWindowSampler,
                                     UniformClipSampler,
)
from deepvideo.data.transforms import KINETICS_MEAN, KINETICS_STD, build_transform

__all__ = ["ClipSampler", "KINETICS_MEAN", "KINETICS_STD", "RandomClipSampler", "SegmentSampler",
           "SlidingWindowSampler", "UniformClipSampler", "VideoDataset", "build_transform",
           "folder_dataset", "hmdb51", "kinetics_csv", "list_dataset", "ucf101"]
