"""Video and text in one embedding space (CLIP, Radford et al. ICML 2021, with a video tower as
ActionCLIP and X-CLIP): the dual encoder and its loss (:mod:`deepvideo.language.model`), the
tokenizer and text tower (:mod:`deepvideo.language.text`), captioned videos
(:mod:`deepvideo.language.data`), training through the engine (:mod:`deepvideo.language.train`),
zero-shot classification, retrieval metrics and search (:mod:`deepvideo.language.zeroshot`).

Needs the optional ``open_clip`` package: ``pip install 'deepvideo[language]'``.
"""

from deepvideo.language.data import (
    DIRECTIONS,
    CaptionedConfig,
    canonical_caption,
    make_captioned_motion_dataset,
    parse_captions,
)
from deepvideo.language.model import (
    VIDEO_ENCODERS,
    ClipSpec,
    DualEncoder,
    build_dual_encoder,
    clip_loss,
    load_clip_checkpoint,
    load_clip_weights,
    open_clip_spec,
)
from deepvideo.language.text import TextEncoder, Tokenizer
from deepvideo.language.train import CLIP_TRAINING, ClipTask, train_clip
from deepvideo.language.zeroshot import (
    TEMPLATES,
    class_embeddings,
    embed_texts,
    embed_videos,
    retrieval_metrics,
    search_videos,
    zero_shot_accuracy,
)

__all__ = ["CLIP_TRAINING", "DIRECTIONS", "TEMPLATES", "VIDEO_ENCODERS", "CaptionedConfig", "ClipSpec", "ClipTask",
           "DualEncoder", "TextEncoder", "Tokenizer", "build_dual_encoder", "canonical_caption", "class_embeddings",
           "clip_loss", "embed_texts", "embed_videos", "load_clip_checkpoint", "load_clip_weights",
           "make_captioned_motion_dataset", "open_clip_spec", "parse_captions", "retrieval_metrics",
           "search_videos", "train_clip", "zero_shot_accuracy"]
