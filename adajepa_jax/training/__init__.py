"""World-model pretraining: losses, the jitted train step and loop, checkpoints (orbax), probes."""
from adajepa_jax.training import checkpoint, losses, probes
from adajepa_jax.training.checkpoint import load
from adajepa_jax.training.train import (TrainState, create_train_state, make_eval_step, make_pretrain_optimizer,
                                        make_train_step, train_and_evaluate)

__all__ = ["TrainState", "checkpoint", "create_train_state", "load", "losses", "make_eval_step",
           "make_pretrain_optimizer", "make_train_step", "probes", "train_and_evaluate"]
