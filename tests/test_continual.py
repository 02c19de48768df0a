"""Continual adaptation (`mpc.make_continual`): sequences of episodes carrying the adapted params, on the tiny
maze config with random-init params."""
import chex
import jax
import numpy as np
import pytest

from adajepa_jax import envs
from adajepa_jax.configs import pointmaze
from adajepa_jax.eval import build
from adajepa_jax.mpc import make_continual, make_episode, make_oracle_episode, sequence_keys

LENGTH = 2


@pytest.fixture(scope="module")
def runs():
  """For one sequence key: the reset runs of its LENGTH episodes and the continual runs, frozen and adaptive,
  the adaptive one also keeping the buffer."""
  cfg = pointmaze.get_config("tiny")
  env = envs.make(cfg.task.name, **cfg.task.kwargs)
  wm = build.world_model_for(cfg, env)
  params = jax.jit(wm.init)(jax.random.key(0))
  key = jax.random.key(3)
  keys = sequence_keys(key, LENGTH)
  out = {}
  for mode in ("frozen", "predlast+enclast"):
    program = make_episode(env, wm, build.mode_config(cfg, mode), record_frames=False)
    out[mode, "reset"] = jax.jit(jax.vmap(lambda k: program.run(params, k)))(keys)
    out[mode, "continual"] = jax.jit(make_continual(program, LENGTH).run)(params, key)
  adaptive = make_episode(env, wm, build.mode_config(cfg, "predlast+enclast"), record_frames=False)
  out["predlast+enclast", "buffer"] = jax.jit(make_continual(adaptive, LENGTH, keep_buffer=True).run)(params, key)
  return jax.tree.map(np.asarray, out)


def _same_episodes(a, b):
  """The same episodes: equal outcomes, floats to XLA's reassociation tolerance (the sequence's scan and the
  vmapped episodes compile differently)."""
  np.testing.assert_array_equal(a.success_any, b.success_any)
  chex.assert_trees_all_close(a, b, rtol=1e-4, atol=1e-6)


def test_frozen_sequences_equal_reset_episodes(runs):
  """Without adaptation nothing carries over: the continual sequence is the reset episodes."""
  _same_episodes(runs["frozen", "continual"], runs["frozen", "reset"])


def test_adaptive_sequences_carry_the_adapted_params(runs):
  """The first episode of a sequence is the reset episode; the second starts from the first one's adapted
  params, so its first prediction error differs from the reset run's, and keeping the buffer changes its first
  adaptation loss (the buffer then holds the first episode's transitions)."""
  reset, cont, buf = (runs["predlast+enclast", k] for k in ("reset", "continual", "buffer"))
  chex.assert_shape(cont.success_any, (LENGTH,))
  first = lambda r: jax.tree.map(lambda x: x[:1], r)
  _same_episodes(first(cont), first(reset))
  _same_episodes(first(buf), first(reset))
  before = lambda r: r.per_replan["pred_error_before"][1, 0]
  assert abs(before(cont) - before(reset)) > 1e-3 * before(reset)
  np.testing.assert_allclose(before(buf), before(cont), rtol=1e-5)   # the same carried params
  assert abs(buf.per_replan["adapt_loss"][1, 0] - cont.per_replan["adapt_loss"][1, 0]) > 1e-3 * before(reset)
  np.testing.assert_array_equal(cont.states[1, 0], reset.states[1, 0])   # the episode's own start


def test_continual_needs_a_world_model_and_a_length():
  cfg = pointmaze.get_config("tiny")
  env = envs.make(cfg.task.name, **cfg.task.kwargs)
  oracle = make_continual(make_oracle_episode(env, cfg, "clean"), 2)
  with pytest.raises(ValueError, match="carries a world model's adapted params"):
    jax.eval_shape(oracle.run, {}, jax.random.key(0))
  with pytest.raises(ValueError, match="length must be >= 1"):
    make_continual(oracle, 0)
