"""Small transformers (and the RNN before them) written as explicit math, with named hook points.

Pure PyTorch: importable without FastAPI, used alone by training and tests.
"""

from models.checkpoint import load_checkpoint, save_checkpoint
from models.config import ModelConfig
from models.hooks import HookPoint, Trace, capture, hook_names
from models.rnn import RNNConfig, RNNSeq2Seq
from models.transformer import Transformer, build_model

__all__ = [
    "HookPoint",
    "ModelConfig",
    "RNNConfig",
    "RNNSeq2Seq",
    "Trace",
    "Transformer",
    "build_model",
    "capture",
    "hook_names",
    "load_checkpoint",
    "save_checkpoint",
]
