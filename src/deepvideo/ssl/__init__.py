"""Self-supervised pretraining from unlabelled video (:mod:`deepvideo.ssl.pretext` for the
tasks, :mod:`deepvideo.ssl.train` for training them through the engine)."""

from deepvideo.ssl.pretext import PRETEXT_TASKS, Pretext, list_pretext_tasks
from deepvideo.ssl.train import PRETRAINING, PretextTask, build_pretext_net, pretrain

__all__ = ["PRETEXT_TASKS", "PRETRAINING", "Pretext", "PretextTask", "build_pretext_net", "list_pretext_tasks",
           "pretrain"]
