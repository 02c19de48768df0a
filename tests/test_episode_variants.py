"""Variants of the episode program on the tiny maze config with random-init params: continual adaptation
(`mpc.make_continual`: sequences of episodes carrying the adapted params) and a grid of adaptation settings as
data (`make_episode(settings=...)`: one compiled program, each cell equal to its setting run alone)."""
import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adajepa_jax import adaptation, envs
from adajepa_jax.configs import pointmaze
from adajepa_jax.eval import build
from adajepa_jax.mpc import evaluate, make_continual, make_episode, make_oracle_episode, sequence_keys

LENGTH = 2
MODE = "predlast+enclast"


@pytest.fixture(scope="module")
def tiny():
  cfg = pointmaze.get_config("tiny")
  env = envs.make(cfg.task.name, **cfg.task.kwargs)
  wm = build.world_model_for(cfg, env)
  return cfg, env, wm, jax.jit(wm.init)(jax.random.key(0))


@pytest.fixture(scope="module")
def runs(tiny):
  """For one sequence key, adaptive: the reset runs of its LENGTH episodes, the continual runs, and the
  continual runs keeping the buffer."""
  cfg, env, wm, params = tiny
  key = jax.random.key(3)
  keys = sequence_keys(key, LENGTH)
  program = make_episode(env, wm, build.mode_config(cfg, MODE), record_frames=False)
  out = {(MODE, "reset"): jax.jit(jax.vmap(lambda k: program.run(params, k)))(keys),
         (MODE, "continual"): jax.jit(make_continual(program, LENGTH).run)(params, key),
         (MODE, "buffer"): jax.jit(make_continual(program, LENGTH, keep_buffer=True).run)(params, key)}
  return jax.tree.map(np.asarray, out)


def _same_episodes(a, b):
  """The same episodes: equal outcomes, floats to XLA's reassociation tolerance (the sequence's scan and the
  vmapped episodes compile differently)."""
  np.testing.assert_array_equal(a.success_any, b.success_any)
  chex.assert_trees_all_close(a, b, rtol=1e-4, atol=1e-6)


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


def _alone(tiny, keys, **adapt):
  """The adaptive episodes of `keys` under the MODE config with `adapt` updated, as their own program."""
  cfg, env, wm, params = tiny
  c = build.mode_config(cfg, adapt.pop("spec", MODE))
  c.adapt.update(adapt)
  program = make_episode(env, wm, c, record_frames=False)
  return jax.tree.map(np.asarray, jax.jit(jax.vmap(lambda k: program.run(params, k)))(keys))


def test_a_grid_of_settings_is_one_program_equal_to_its_cells(tiny, runs):
  """Four settings x the 2 episodes as one program, traced once: the config's; 5x the learning rates with 3
  steps per replan; the layer set predfirst (the program adapts the union, each episode masks the updates its
  spec leaves out); and a hard-2 buffer (one 5-slot buffer serves recent-5 and hard-2, rescored at every
  replan). Each cell equals its setting run alone (the config's: the reset runs above)."""
  cfg, env, wm, params = tiny
  adaptive = build.mode_config(cfg, MODE)
  assert (adaptive.adapt.buffer, adaptive.adapt.buffer_size, adaptive.adapt.buffer_weighting) == (
      "recent", 5, "uniform")
  lr_p, lr_e = adaptation.learning_rates(adaptive)
  fast = dict(lr_predictor=5 * lr_p, lr_encoder=5 * lr_e, steps=3)
  cells = [{}, fast, {"spec": "predfirst"}, {"buffer": "hard", "buffer_size": 2}]
  settings = [adaptation.setting_of(adaptive, **{"spec": MODE, "buffer": "recent", **c}) for c in cells]
  program = make_episode(env, wm, adaptive, record_frames=False, settings=settings)
  traces = []

  def counted(*args, **kwargs):
    traces.append(1)
    return program.run(*args, **kwargs)

  keys = sequence_keys(jax.random.key(3), LENGTH)
  grid = evaluate(dataclasses.replace(program, run=counted), params, jnp.tile(keys, len(cells)), mesh=None,
                  setting_ids=np.repeat(np.arange(len(cells)), LENGTH))
  grid = jax.tree.map(np.asarray, grid)
  assert len(traces) == 1
  cell = lambda i: jax.tree.map(lambda x: x[i * LENGTH:(i + 1) * LENGTH], grid)
  _same_episodes(cell(0), runs[MODE, "reset"])
  for i in range(1, len(cells)):
    _same_episodes(cell(i), _alone(tiny, keys, **cells[i]))
  assert not np.allclose(grid.per_replan["pred_error_after"][0], grid.per_replan["pred_error_after"][LENGTH])


def test_grid_settings_are_checked(tiny):
  """A frozen program takes no settings; specs and buffers are named in every setting or in none; a hard
  buffer has no merged weighting; setting ids must index the settings."""
  cfg, env, wm, params = tiny
  adaptive = build.mode_config(cfg, MODE)
  settings = [adaptation.setting_of(adaptive), adaptation.setting_of(adaptive, steps=2)]
  with pytest.raises(ValueError, match="need an adapting world model"):
    make_episode(env, wm, build.mode_config(cfg, "frozen"), settings=settings)
  with pytest.raises(ValueError, match="name a spec in every setting or in none"):
    make_episode(env, wm, adaptive, settings=[adaptation.setting_of(adaptive, spec=MODE), settings[0]])
  with pytest.raises(ValueError, match="name a buffer in every setting or in none"):
    make_episode(env, wm, adaptive, settings=[adaptation.setting_of(adaptive, buffer="hard", buffer_size=2),
                                              settings[0]])
  with pytest.raises(ValueError, match="'hard' policy"):
    adaptation.setting_of(adaptive, buffer="hard", buffer_weighting="merged")
  program = make_episode(env, wm, adaptive, record_frames=False, settings=settings)
  with pytest.raises(ValueError, match=r"setting_ids must be int32\[2\] in \[0, 2\)"):
    evaluate(program, params, sequence_keys(jax.random.key(3), LENGTH), mesh=None, setting_ids=np.array([0, 2]))


def _chunked_observations(env, cfg, chunks=3):
  """One constant action chunk and the observations at the chunk boundaries of an episode that repeats it
  `chunks` times: (chunk f32[frameskip * A], [obs dict] * (chunks + 1))."""
  chunk = jnp.full((env.action_size * cfg.data.frameskip,), 0.5)
  step = jax.jit(env.step)
  states = [jax.jit(env.reset)(jax.random.key(0))]
  for _ in range(chunks):
    for a in chunk.reshape(cfg.data.frameskip, env.action_size):
      states.append(step(states[-1], a))
  return chunk, [{"pixels": st.obs["pixels"], "proprio": st.obs["proprio"]} for st in states[::cfg.data.frameskip]]


def test_hard_buffer_is_rescored_with_the_current_params(tiny):
  """hard-N: before each insertion the stored transitions are rescored by the current (adapted) params, so the
  eviction compares today's errors, not the errors they had when stored."""
  from adajepa_jax.mpc import world_model_planner
  cfg, env, wm, params = tiny
  c = build.mode_config(cfg, MODE)
  c.adapt.update(buffer="hard", buffer_size=2)
  model = world_model_planner(wm, c, env.action_size)
  chunk, obs = _chunked_observations(env, c)

  observe = jax.jit(model.observe)   # one compiled observation, called three times
  s = [jax.jit(model.init)(params, jax.random.key(1), obs[0], obs[-1])]
  for o in obs[1:]:
    s.append(observe(s[-1], o, chunk)[0])
  rescored = adaptation.window_losses(s[2].params, s[2].buffer.windows, wm.loss)   # before the third insertion
  kept = 1 - int(np.argmin(rescored))   # the full 2-slot buffer evicts the lowest rescored transition
  assert float(s[2].buffer.score.min()) > 0
  np.testing.assert_allclose(s[3].buffer.score[kept], rescored[kept], rtol=1e-5)
  assert not np.isclose(float(s[2].buffer.score[kept]), float(s[3].buffer.score[kept]))


def test_guard_plans_with_the_better_predictor_so_far(tiny):
  """`adapt.guard`: each observed transition is scored by the adapted and the unadapted params before either
  adapts on it; the plan uses the adapted params only once their summed error is lower (a tie, as at the start
  when both are equal, keeps the unadapted ones), and adaptation goes on either way."""
  from adajepa_jax.mpc import world_model_planner
  cfg, env, wm, params = tiny
  c = build.mode_config(cfg, MODE)
  c.adapt.guard = True
  model = world_model_planner(wm, c, env.action_size)
  plain = world_model_planner(wm, build.mode_config(cfg, MODE), env.action_size)
  chunk, obs = _chunked_observations(env, c)
  observe = jax.jit(model.observe)
  s, metrics = [jax.jit(model.init)(params, jax.random.key(1), obs[0], obs[-1])], []
  for o in obs[1:]:
    new, m = observe(s[-1], o, chunk)
    s.append(new)
    metrics.append(jax.tree.map(float, m))
  m0 = metrics[0]
  assert m0["pred_error_before"] == m0["pred_error_unadapted"] and m0["planned_adapted"] == 0.0
  assert metrics[1]["planned_adapted"] == 0.0                     # the first transition was a tie
  before = np.cumsum([m["pred_error_before"] for m in metrics])
  unadapted = np.cumsum([m["pred_error_unadapted"] for m in metrics])
  assert metrics[2]["planned_adapted"] == float(before[1] < unadapted[1])
  assert metrics[1]["pred_error_before"] != metrics[1]["pred_error_unadapted"]   # the params did adapt
  chex.assert_trees_all_equal(s[3].base, s[0].params)
  np.testing.assert_allclose(s[3].guard_error, [before[-1], unadapted[-1]], rtol=1e-6)

  plans = jax.random.uniform(jax.random.key(2), (4, c.plan.horizon, env.action_size * c.data.frameskip))
  cost = lambda m, st: jax.jit(lambda st: m.planning(st, None, 1)[0](plans))(st)   # noqa: E731
  for errors, params_used in (([1.0, 2.0], s[3].params), ([2.0, 1.0], s[3].base), ([1.0, 1.0], s[3].base)):
    guarded = s[3].replace(guard_error=jnp.asarray(errors))
    np.testing.assert_allclose(cost(model, guarded), cost(plain, s[3].replace(params=params_used)), rtol=1e-5)
  assert not np.allclose(cost(plain, s[3]), cost(plain, s[3].replace(params=s[3].base)))


def test_goal_draws_plan_to_the_mean_goal_latent(tiny):
  """`plan.goal_draws` = K (beyond the paper): the episode encodes K independent draws of a random visual shift
  of the goal image (identical draws without one), keeps the first as its record, and plans towards the mean of
  the K goal latents."""
  from adajepa_jax.mpc import world_model_planner
  from adajepa_jax.planning import objectives
  cfg, env, wm, params = tiny
  c = build.mode_config(cfg, "frozen")
  c.plan.goal_draws = 3
  for condition, distinct in (("snp5", True), ("clean", False)):
    carry = jax.jit(make_episode(env, wm, c, condition, record_frames=False).init)(params, jax.random.key(4))
    feats = np.asarray(carry.model.goal["features"])                     # [K, N, F]
    assert feats.shape[0] == 3 and carry.goal_pixels.shape == (c.task.kwargs.image_size,) * 2 + (3,)
    assert (not np.allclose(feats[0], feats[1]) and not np.allclose(feats[1], feats[2])) == distinct, condition
    np.testing.assert_allclose(feats[0], wm.features(params, carry.goal_pixels), rtol=1e-5, atol=1e-6)

  model = world_model_planner(wm, c, env.action_size)
  _, obs = _chunked_observations(env, c)
  goals = obs[1:4]
  state = jax.jit(model.init)(params, jax.random.key(1), obs[0], jax.tree.map(lambda *x: jnp.stack(x), *goals))
  plans = jax.random.uniform(jax.random.key(2), (4, c.plan.horizon, env.action_size * c.data.frameskip))
  cost = jax.jit(lambda st: model.planning(st, None, 1)[0](plans))(state)
  z_goal = jnp.mean(jnp.stack([wm.encode(params, g) for g in goals]), 0)
  ctx = state.context
  z_pred = jax.vmap(lambda p: wm.rollout(params, wm.encode(params, ctx.obs), ctx.actions, p, ctx.valid))(plans)
  weights = objectives.horizon_weights(c.plan.objective, c.plan.horizon, 1, c.plan.staged_switch)
  expected = objectives.latent_cost(z_pred, z_goal, weights, wm.visual_dim, c.plan.proprio_weight)
  np.testing.assert_allclose(cost, expected, rtol=1e-4)
  single = world_model_planner(wm, build.mode_config(cfg, "frozen"), env.action_size)
  one = jax.jit(lambda st: single.planning(st, None, 1)[0](plans))(
      jax.jit(single.init)(params, jax.random.key(1), obs[0], goals[0]))
  assert not np.allclose(cost, one, rtol=1e-3)


def test_goal_draws_is_checked(tiny):
  """A bad `plan.goal_draws` fails when the episode is built, naming the value (the config's type check already
  refuses floats and strings; the episode's check also guards a plain dict's)."""
  from adajepa_jax.mpc.episode import check_goal_draws
  cfg, env, wm, _ = tiny
  for bad in (0, -2):
    c = build.mode_config(cfg, "frozen")
    c.plan.goal_draws = bad
    with pytest.raises(ValueError, match=rf"plan.goal_draws={bad}: expected an integer >= 1"):
      make_episode(env, wm, c)
  for bad in (1.5, True, "3"):
    with pytest.raises(ValueError, match="expected an integer >= 1"):
      check_goal_draws(bad)
  assert check_goal_draws(4) == 4
