"""Training (resumable, repeatable) and test-time feature extraction / evaluation."""

from grl.engine.features import evaluate_model, extract_features, load_run
from grl.engine.trainer import RunMismatchError, train

__all__ = ["RunMismatchError", "evaluate_model", "extract_features", "load_run", "train"]
