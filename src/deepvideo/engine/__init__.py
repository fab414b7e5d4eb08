"""Training, evaluation and prediction over the data and model layers.

:func:`fit` is the one training loop; a :class:`Task` says what it trains.  :func:`train`
is classification's task on that loop.
"""

from deepvideo.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from deepvideo.engine.classify import ClassificationTask, train
from deepvideo.engine.evaluate import evaluate
from deepvideo.engine.predict import predict_video
from deepvideo.engine.recipe import DataSpec, Recipe
from deepvideo.engine.task import Step, Task
from deepvideo.engine.train import TrainConfig, fit
from deepvideo.engine.transfer import Transfer

__all__ = ["CheckpointError", "ClassificationTask", "DataSpec", "Recipe", "Step", "Task", "TrainConfig", "Transfer",
           "evaluate", "fit", "load_checkpoint", "predict_video", "save_checkpoint", "train"]
