"""Video super-resolution: degradations that turn any video into training pairs, the bicubic
baseline, SRNet frame by frame and FRVSR (frame-recurrent), the metrics published tables use
(Y-PSNR and Y-SSIM as BasicSR, tOF as TecoGAN), training through the engine's one loop, and
streaming evaluation and upscaling of real videos.

Layouts: LR clips ``(B, T, 3, h, w)`` and SR clips ``(B, T, 3, s h, s w)`` float in
``[0, 1]``; frames ``(T, H, W, 3)`` uint8 RGB as decoded.
"""

from deepvideo.sr.apply import evaluate_sr, load_sr, upscale_video
from deepvideo.sr.degrade import DEGRADATIONS, bicubic_down, blur_down, degrade, degrade_frames, random_crop_pair
from deepvideo.sr.metrics import psnr, rgb_to_y, ssim, tof
from deepvideo.sr.models import FRVSR, SR_MODELS, Bicubic, FNet, FrameSR, SRNet, VideoSR, build_sr_model
from deepvideo.sr.train import SR_TRAINING, SRTask, train_sr

__all__ = ["DEGRADATIONS", "FNet", "FRVSR", "SR_MODELS", "SR_TRAINING", "Bicubic", "FrameSR", "SRNet", "SRTask",
           "VideoSR", "bicubic_down", "blur_down", "build_sr_model", "degrade", "degrade_frames", "evaluate_sr",
           "load_sr", "psnr", "random_crop_pair", "rgb_to_y", "ssim", "tof", "train_sr", "upscale_video"]
