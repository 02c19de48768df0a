"""The MPC loop: one episode = one `lax.scan` over replans; batched, sharded evaluation."""
from adajepa_jax.mpc.episode import (Carry, Context, EpisodeProgram, EpisodeResult, ModelState, PlanningModel,
                                     ReplanOutput, make_continual, make_episode, sequence_keys,
                                     world_model_planner)
from adajepa_jax.mpc.evaluate import chunk_size, episode_keys, evaluate, make_evaluator, make_mesh, with_conditions
from adajepa_jax.mpc.oracle import make_oracle_episode, simulator_model
