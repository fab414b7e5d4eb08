"""Training, evaluation and prediction over the data and model layers."""

from deepvideo.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from deepvideo.engine.evaluate import evaluate
from deepvideo.engine.predict import predict_video
from deepvideo.engine.recipe import DataSpec, Recipe
from deepvideo.engine.train import TrainConfig, train

__all__ = ["CheckpointError", "DataSpec", "Recipe", "TrainConfig", "evaluate", "load_checkpoint",
           "predict_video", "save_checkpoint", "train"]
