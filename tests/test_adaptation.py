"""Adaptation on the real tiny world model: specs, masked steps, LoRA, skipping, buffers."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adajepa_jax import adaptation, models
from adajepa_jax.configs import pusht
from adajepa_jax.errors import UsageError

N_SLOTS = 5


def _leaves(tree):
  return {jax.tree_util.keystr(p): x if isinstance(x, str) else np.asarray(x)
          for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


@pytest.fixture(scope="module")
def setup():
  cfg = pusht.get_config("tiny")
  cfg.model.depth = 2   # two predictor blocks, so predfirst and predlast differ
  h = cfg.data.history
  obs_spec = dict(image_size=cfg.task.kwargs.image_size, proprio_size=4, action_size=2 * cfg.data.frameskip,
                  history=h)
  wm = models.make_world_model(cfg.model, obs_spec)
  params = wm.init(jax.random.key(0))
  k1, k2, k3, k4 = jax.random.split(jax.random.key(1), 4)
  # The residual predictor starts with a zero output kernel (copy-last-latent), through which no gradient
  # reaches the blocks; give it the non-zero kernel a pretrained model has.
  out = params["predictor"]["out_proj"]
  out["kernel"] = 0.1 * jax.random.normal(k4, out["kernel"].shape)
  size = obs_spec["image_size"]
  windows = {
      "pixels": jax.random.randint(k1, (N_SLOTS, h + 1, size, size, 3), 0, 256).astype(jnp.uint8),
      "proprio": jax.random.normal(k2, (N_SLOTS, h + 1, 4)),
      "actions": jax.random.uniform(k3, (N_SLOTS, h, obs_spec["action_size"]), minval=-1, maxval=1),
      "valid": jnp.ones((N_SLOTS, h + 1), bool).at[0, 0].set(False),
  }
  buf = adaptation.buffer_init(jax.tree_util.tree_map(lambda x: x[0], windows), N_SLOTS)
  for i in range(N_SLOTS):
    buf = adaptation.buffer_add(buf, jax.tree_util.tree_map(lambda x: x[i], windows), 0.0, "recent")
  return dict(cfg=cfg, wm=wm, params=params, windows=windows, buffer=buf, loss=jax.jit(wm.loss))


def _toy_loss(params, batch):
  """A cheap stand-in loss over the same param tree: pull every leaf towards the buffer's mean proprio."""
  target = jnp.sum(batch["weight"][:, None, None] * batch["proprio"]) / (4 * batch["weight"].sum() + 1e-8)
  sq = [jnp.mean(jnp.square(x - target)) for x in jax.tree_util.tree_leaves(params)]
  return jnp.sum(jnp.stack(sq)), {}


def _run(setup, spec, steps=1, loss_fn=None, buffer=None):
  cfg = setup["cfg"].copy_and_resolve_references()
  cfg.adapt.spec = spec
  params, labels, opt = adaptation.prepare(cfg, setup["params"], jax.random.key(2))
  loss_fn = loss_fn or setup["wm"].loss
  step = jax.jit(lambda p, s, b: adaptation.adapt_step(p, s, b, loss_fn=loss_fn, optimizer=opt, labels=labels,
                                                       steps=steps))
  new_params, state, metrics = step(params, opt.init(params), setup["buffer"] if buffer is None else buffer)
  return params, labels, new_params, state, metrics


def test_spec_resolution(setup):
  params = setup["params"]
  labels = _leaves(adaptation.resolve("predlast+enclast", params))
  for path, label in labels.items():
    if "['encoder']['head']" in path:
      assert label == "encoder", path
    elif any(f"['predictor']['{k}']" in path for k in ("block_1", "final_norm", "out_proj")):
      assert label == "predictor", path
    else:
      assert label == "frozen", path
  first = _leaves(adaptation.resolve("predfirst", params))
  assert {p for p, l in first.items() if l != "frozen"} == {p for p in first if "['block_0']" in p}
  both = _leaves(adaptation.resolve("predfirstlast+encfirst", params))
  assert all(both[p] == "predictor" for p in both if "['block_0']" in p or "['block_1']" in p)
  assert all(both[p] == "encoder" for p in both if "['stem']" in p)
  assert all(both[p] == "frozen" for p in both if "['stage_0']" in p or "['head']" in p)
  encfrozen = _leaves(adaptation.resolve("encfrozen", params))
  assert all((l == "frozen") == ("['encoder']" in p) for p, l in encfrozen.items())
  assert "frozen" not in set(_leaves(adaptation.resolve("all", params)).values())
  # predlastblock: the paper's default half, the last block and the final norm without the output map.
  block = {p for p, l in _leaves(adaptation.resolve("predlastblock", params)).items() if l != "frozen"}
  assert block == {p for p in labels if "['block_1']" in p or "['final_norm']" in p}
  assert block and not any("out_proj" in p for p in block)
  # The spec's groups agree with the model's own layer groups.
  flat = adaptation.resolve_paths("predlast", params)
  assert flat and all(any(p[:len(g)] == g for g in models.layer_groups(params)["predlast"]) for p in flat)


@pytest.mark.parametrize("spec,adapts", [("predlast+enclast", False), ("predfirst", False), ("encfrozen", False),
                                         ("lora", False), ("encfirst", True), ("predlast+encfirst", True),
                                         ("all", True)])
def test_adapts_encoder_trunk(setup, spec, adapts):
  cfg = setup["cfg"].copy_and_resolve_references()
  cfg.adapt.spec = spec
  labels = adaptation.prepare(cfg, setup["params"], jax.random.key(0))[1]
  assert adaptation.adapts_encoder_trunk(labels) == adapts


@pytest.mark.parametrize("bad", ["predmiddle", "predlast+encmid", "", "predlast+"])
def test_unknown_spec_errors(setup, bad):
  with pytest.raises(ValueError, match="valid specs: predlast, predlastblock, predfirst"):
    adaptation.resolve(bad, setup["params"])


def test_lora_spec_needs_adapters(setup):
  with pytest.raises(ValueError, match="with_adapters"):
    adaptation.resolve("lora", setup["params"])


def test_partition_and_combine(setup):
  params = setup["params"]
  labels = adaptation.resolve("predlast+enclast", params)
  trainable, frozen = adaptation.partition(params, labels)
  lab = _leaves(labels)
  assert set(_leaves(trainable)) == {p for p, l in lab.items() if l != "frozen"}
  assert set(_leaves(frozen)) == {p for p, l in lab.items() if l == "frozen"}
  chex.assert_trees_all_equal(adaptation.combine(trainable, frozen), params)


def test_default_step_freezes_and_adapts(setup):
  params, labels, new_params, _, metrics = _run(setup, "predlast+enclast")
  old, new, lab = _leaves(params), _leaves(new_params), _leaves(labels)
  for path in old:
    if lab[path] == "frozen":
      assert np.array_equal(old[path], new[path]) and old[path].dtype == new[path].dtype, path
  changed = {p for p in old if not np.array_equal(old[p], new[p])}
  assert any("['encoder']['head']" in p for p in changed)
  assert any("['predictor']['block_1']" in p for p in changed)
  assert int(metrics["skipped"]) == 0 and float(metrics["grad_norm"]) > 0
  assert float(setup["loss"](new_params, setup["buffer"].batch())[0]) < float(metrics["loss_before"])
  loss0, _ = setup["loss"](params, setup["buffer"].batch())
  np.testing.assert_allclose(metrics["loss_before"], loss0, rtol=1e-5)
  setup["default_loss_before"] = metrics["loss_before"]


def test_lora_at_init_equals_base_and_trains_adapters_only(setup):
  before, labels, after, _, metrics = _run(setup, "lora")
  # Zero-initialised adapters: the loss before the step is the base model's, exactly.
  base_loss, _ = setup["loss"](setup["params"], setup["buffer"].batch())
  np.testing.assert_array_equal(metrics["loss_before"], base_loss)
  lab, old, new = _leaves(labels), _leaves(before), _leaves(after)
  assert all((l != "frozen") == p.startswith("['lora']") for p, l in lab.items())
  assert all(np.array_equal(old[p], new[p]) for p in old if not p.startswith("['lora']"))
  assert any(not np.array_equal(old[p], new[p]) for p in old if p.startswith("['lora']"))
  assert float(setup["loss"](after, setup["buffer"].batch())[0]) < float(metrics["loss_before"])


def test_nonfinite_step_is_skipped(setup):
  def nan_loss(params, batch):   # the skip logic is model-independent: a cheap loss that turns NaN
    loss, metrics = _toy_loss(params, batch)
    return loss * jnp.nan, metrics

  params, _, new_params, _, metrics = _run(setup, "predlast+enclast", steps=2, loss_fn=nan_loss)
  assert int(metrics["skipped"]) == 2
  chex.assert_trees_all_equal(params, new_params)


def test_empty_slots_contribute_nothing(setup):
  windows = setup["windows"]
  buf = adaptation.buffer_init(jax.tree_util.tree_map(lambda x: x[0], windows), N_SLOTS)
  for i in range(2):
    buf = adaptation.buffer_add(buf, jax.tree_util.tree_map(lambda x: x[i], windows), 0.0, "recent")
  two = jax.tree_util.tree_map(lambda x: x[:2], windows)
  np.testing.assert_allclose(setup["loss"](setup["params"], buf.batch())[0],
                             setup["loss"](setup["params"], two)[0], rtol=1e-5)


def test_window_losses_score_each_window(setup):
  windows = jax.tree_util.tree_map(lambda x: x[:2], setup["windows"])
  scores = jax.jit(adaptation.window_losses, static_argnums=2)(setup["params"], windows, setup["wm"].loss)
  chex.assert_shape(scores, (2,))
  for i in range(2):
    single = jax.tree_util.tree_map(lambda x: x[i:i + 1], windows)
    np.testing.assert_allclose(scores[i], setup["loss"](setup["params"], single)[0], rtol=1e-5)
  assert float(scores[0]) != float(scores[1])


def test_reset_vs_persistent_optimizer(setup):
  params, labels, opt = adaptation.prepare(setup["cfg"], setup["params"], jax.random.key(0))

  def count(state):
    return max(int(x) for x in jax.tree_util.tree_leaves(state) if jnp.issubdtype(x.dtype, jnp.integer))

  for reset, expected in ((True, 1), (False, 2)):
    step = jax.jit(lambda p, s, reset=reset: adaptation.adapt_step(
        p, s, setup["buffer"], loss_fn=_toy_loss, optimizer=opt, labels=labels, reset=reset))
    p, s, _ = step(params, opt.init(params))
    p, s, _ = step(p, s)
    assert count(s) == expected


def test_vmapped_episodes_match_single(setup):
  params, labels, opt = adaptation.prepare(setup["cfg"], setup["params"], jax.random.key(0))

  def one(p, b):
    return adaptation.adapt_step(p, opt.init(p), b, loss_fn=_toy_loss, optimizer=opt, labels=labels)

  other = adaptation.buffer_add(setup["buffer"], jax.tree_util.tree_map(lambda x: 2 * x[1], setup["windows"]),
                                0.0, "recent")
  bufs = jax.tree_util.tree_map(lambda x, y: jnp.stack([x, y]), setup["buffer"], other)
  pstack = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), params)
  p_batch, _, m_batch = jax.jit(jax.vmap(one))(pstack, bufs)
  p_single, _, m_single = jax.jit(one)(params, setup["buffer"])
  chex.assert_trees_all_close(jax.tree_util.tree_map(lambda x: x[0], p_batch), p_single, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(m_batch["loss_before"][0], m_single["loss_before"], rtol=1e-5)
  p_other, _, _ = jax.jit(one)(params, other)
  chex.assert_trees_all_close(jax.tree_util.tree_map(lambda x: x[1], p_batch), p_other, rtol=1e-5, atol=1e-6)


def _ids_buffer(size):
  return adaptation.buffer_init({"x": jnp.zeros((2,)), "valid": jnp.zeros((2,), bool)}, size)


def _add_ids(buf, ids, scores, policy):
  add = jax.jit(adaptation.buffer_add, static_argnames="policy")
  for i, s in zip(ids, scores):
    buf = add(buf, {"x": jnp.full((2,), float(i)), "valid": jnp.ones((2,), bool)}, s, policy=policy)
  return buf


def _kept(buf):
  return sorted(int(x) for x, w in zip(buf.windows["x"][:, 0], buf.weight) if w > 0)


def test_buffer_policies():
  ids = list(range(7))
  recent = _add_ids(_ids_buffer(3), ids, [0.0] * 7, "recent")
  assert _kept(recent) == [4, 5, 6] and int(recent.count) == 7
  partial = _add_ids(_ids_buffer(3), ids[:2], [0.0] * 2, "recent")
  assert _kept(partial) == [0, 1] and float(partial.weight.sum()) == 2.0
  scores = [5.0, 1.0, 4.0, 0.5, 3.0, 0.1, 2.0]
  hard = _add_ids(_ids_buffer(3), ids, scores, "hard")
  # Each add evicts the lowest-scored entry, so the newest (id 6, score 2) is kept with ids 0 and 2.
  assert _kept(hard) == [0, 2, 6]
  none = _add_ids(_ids_buffer(1), ids, [0.0] * 7, "none")
  assert _kept(none) == [6]
  size = adaptation.buffer_size("unbounded", 5, replans=7)
  unbounded = _add_ids(_ids_buffer(size), ids, [0.0] * 7, "unbounded")
  assert _kept(unbounded) == ids
  assert adaptation.buffer_size("none", 5, replans=7) == 1
  with pytest.raises(ValueError, match="recent, hard, none, unbounded"):
    adaptation.buffer_add(_ids_buffer(3), {"x": jnp.zeros(2), "valid": jnp.ones(2, bool)}, 0.0, "oldest")


@pytest.mark.parametrize("policy,size,weighting", [("recent", 3, "uniform"), ("hard", 3, "uniform"),
                                                   ("none", 5, "uniform"), ("unbounded", 5, "uniform"),
                                                   ("recent", 5, "merged")])
def test_buffer_rule_in_a_larger_buffer_acts_as_its_policy(policy, size, weighting):
  """A `BufferRule` (traced, as a grid episode carries it) in a 9-slot buffer keeps, weighs and scores the same
  windows in its first slots as the policy in a buffer of its own size, and leaves the other slots empty."""
  replans, slots = 7, 9
  window = {"x": jnp.zeros((2,)), "actions": jnp.zeros((3, 1))}
  rule = adaptation.buffer_rule(policy, size, replans, weighting)
  own = adaptation.buffer_init(window, adaptation.buffer_size(policy, size, replans))
  big = adaptation.buffer_init(window, slots)
  add_policy = jax.jit(adaptation.buffer_add, static_argnames=("policy", "weighting"))
  add_rule = jax.jit(adaptation.buffer_add)
  scores = [5.0, 1.0, 4.0, 0.5, 3.0, 0.1, 2.0, 0.7, 6.0]
  for i, score in enumerate(scores):
    w = {"x": jnp.full((2,), float(i)), "actions": jnp.full((3, 1), float(i))}
    own = add_policy(own, w, score, policy=policy, weighting=weighting)
    big = add_rule(big, w, score, rule)
    n = own.size
    np.testing.assert_array_equal(big.weight[:n], own.weight)
    np.testing.assert_array_equal(big.score[:n] * (own.weight > 0), own.score * (own.weight > 0))
    np.testing.assert_array_equal(big.windows["x"][:n] * (own.weight > 0)[:, None],
                                  own.windows["x"] * (own.weight > 0)[:, None])
    assert not big.weight[n:].any()
  assert int(rule.capacity) == own.size and _kept(own)   # (the policy kept something)


def test_buffer_in_scan():
  """The buffer works as a scan carry (fixed shapes, traced count)."""
  def body(buf, i):
    return adaptation.buffer_add(buf, {"x": jnp.full((2,), i), "valid": jnp.ones((2,), bool)},
                                 -i, "recent"), None

  buf, _ = jax.lax.scan(body, _ids_buffer(4), jnp.arange(10.0))
  assert _kept(buf) == [6, 7, 8, 9]
  np.testing.assert_array_equal(jnp.sort(buf.score), [-9.0, -8.0, -7.0, -6.0])


def test_merged_weights_by_slot():
  """Slot weights of the authors' merged sequence (history 3), oldest to newest 1, 2, 3, 2, 1 on 5 slots."""
  w = lambda count, size=5: np.asarray(adaptation.merged_weights(jnp.asarray(count), size, 3)).tolist()  # noqa
  assert w(5) == [1, 2, 3, 2, 1]
  assert w(7) == [2, 1, 1, 2, 3]          # ring: slot 1 holds the newest, slot 2 the oldest
  assert w(4) == [1, 2, 2, 1, 0]          # two windows: {1, 2, 3}, {2, 3, 4}
  assert w(3) == [1, 1, 1, 0, 0] and w(2) == [1, 1, 0, 0, 0] and w(0) == [0] * 5   # one window or none
  assert w(7, size=7) == [1, 2, 3, 3, 3, 2, 1]


def test_merged_weighting_needs_a_contiguous_buffer():
  with pytest.raises(ValueError, match="'hard' policy"):
    adaptation.check_buffer("hard", "merged")
  with pytest.raises(ValueError, match="valid weightings: uniform, merged"):
    adaptation.check_buffer("recent", "triangular")


@pytest.mark.parametrize("policy,weighting", [("recent", "uniform"), ("none", "uniform"), ("hard", "uniform"),
                                              ("recent", "merged"), ("unbounded", "merged")])
def test_buffer_loss_on_a_hand_made_episode(setup, policy, weighting):
  """A hand-made 7-transition episode stored as the MPC episode stores it. `uniform`: the buffer's loss is the
  plain mean of the kept transitions' one-step losses (each once; recent-5 keeps the last 5, none the newest,
  hard the newest plus the highest-scored). `merged`: it is the authors' loss on the merged sequence, the mean
  over the history-3 windows sliding over the kept transitions of each window's mean. Each one-step loss is
  computed here from encode + predict on its own."""
  from adajepa_jax.mpc import episode as episode_lib
  wm, params, h = setup["wm"], setup["params"], setup["cfg"].data.history
  steps, size = 7, {"recent": 5, "none": 1, "hard": 3, "unbounded": 7}[policy]
  k1, k2, k3 = jax.random.split(jax.random.key(7), 3)
  img = setup["windows"]["pixels"].shape[2]
  frames = {"pixels": jax.random.randint(k1, (steps + 1, img, img, 3), 0, 256).astype(jnp.uint8),
            "proprio": jax.random.normal(k2, (steps + 1, 4))}
  actions = jax.random.uniform(k3, (steps, setup["windows"]["actions"].shape[-1]), minval=-1, maxval=1)
  frame = lambda t: jax.tree_util.tree_map(lambda x: x[t], frames)  # noqa: E731
  ctx = episode_lib.Context(obs=jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (h,) + x.shape), frame(0)),
                            actions=jnp.zeros((h - 1, actions.shape[-1])), valid=jnp.arange(h) == h - 1)
  encode, predict = jax.jit(wm.encode), jax.jit(wm.predict)
  add = jax.jit(adaptation.buffer_add, static_argnames=("policy", "weighting"))
  buf, losses = None, []
  for t in range(steps):
    a = jnp.concatenate([ctx.actions, actions[t][None]], 0)
    z_pred = predict(params, encode(params, ctx.obs), a, ctx.valid)[-1]
    losses.append(float(jnp.mean(jnp.square(z_pred - encode(params, frame(t + 1))))))
    window = dict(episode_lib._window(ctx, frame(t + 1), actions[t]), id=jnp.asarray(t))
    if buf is None:
      buf = adaptation.buffer_init(window, size)
    buf = add(buf, window, losses[-1], policy=policy, weighting=weighting)
    ctx = episode_lib._slide(ctx, frame(t + 1), actions[t])
  kept = sorted(int(i) for i, w in zip(buf.windows["id"], buf.weight) if w > 0)
  newest_and_hardest = sorted({steps - 1} | set(np.argsort(losses[:-1])[::-1][:size - 1].tolist()))
  assert kept == {"recent": list(range(steps - size, steps)), "none": [steps - 1],
                  "hard": newest_and_hardest, "unbounded": list(range(steps))}[policy]
  loss = float(wm.loss(params, buf.batch())[0])
  kept_losses = [losses[i] for i in kept]
  if weighting == "merged":
    expected = np.mean([np.mean(kept_losses[s:s + h]) for s in range(len(kept) - h + 1)])
    assert abs(expected - np.mean(kept_losses)) > 1e-3 * expected   # the weighting changes the number
  else:
    expected = np.mean(kept_losses)
  np.testing.assert_allclose(loss, expected, rtol=2e-5)
  if policy != "none":   # the loss of the full overlapping windows (every valid pair) is another number
    full = dict(buf.batch())
    del full["target_mask"]
    assert abs(float(wm.loss(params, full)[0]) - loss) > 1e-3 * loss


def test_adaptation_learning_rates_default_to_training_rates():
  from adajepa_jax.configs import pointmaze
  for cfg in (pusht.get_config("cpu"), pusht.get_config("paper"), pointmaze.get_config("cpu")):
    assert adaptation.learning_rates(cfg) == (cfg.train.lr_predictor, cfg.train.lr_encoder)
  cfg = pusht.get_config("paper")
  assert adaptation.learning_rates(cfg) == (5e-4, 1e-5)   # the paper's adaptation rates at its scale
  cfg.train.lr_encoder = 3e-4
  cfg.adapt.lr_predictor = 2e-3
  assert adaptation.learning_rates(cfg) == (2e-3, 3e-4)


def test_traced_settings_equal_static_ones(setup):
  """An `AdaptSetting` carried as data (traced learning rates, a traced step count masked within max_steps)
  adapts as the same setting built statically: 2 of 4 scanned steps at 3x the rates."""
  cfg = setup["cfg"]
  params, labels, _ = adaptation.prepare(cfg, setup["params"], jax.random.key(0))
  lr_p, lr_e = (3 * lr for lr in adaptation.learning_rates(cfg))
  static = adaptation.make_adapt_optimizer(labels, lr_p, lr_e)
  p_static, _, m_static = jax.jit(lambda p: adaptation.adapt_step(
      p, static.init(p), setup["buffer"], loss_fn=_toy_loss, optimizer=static, labels=labels, steps=2))(params)

  def traced(p, setting):
    opt = adaptation.make_adapt_optimizer(labels, setting.lr_predictor, setting.lr_encoder)
    return adaptation.adapt_step(p, opt.init(p), setup["buffer"], loss_fn=_toy_loss, optimizer=opt,
                                 labels=labels, steps=setting.steps, max_steps=4)

  table = adaptation.settings_table([adaptation.setting_of(cfg, lr_predictor=lr_p, lr_encoder=lr_e, steps=2),
                                     adaptation.setting_of(cfg, steps=4)])
  p_grid, _, m_grid = jax.jit(jax.vmap(traced, in_axes=(None, 0)))(params, table)
  chex.assert_trees_all_close(jax.tree_util.tree_map(lambda x: x[0], p_grid), p_static, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(m_grid["grad_norm"][0], m_static["grad_norm"], rtol=1e-6)
  assert any(not np.allclose(g[1], s) for g, s in zip(jax.tree_util.tree_leaves(p_grid),
                                                      jax.tree_util.tree_leaves(p_static)))   # another setting
  with pytest.raises(ValueError, match="unknown adaptation setting"):
    adaptation.setting_of(cfg, lr=1.0)
  with pytest.raises(ValueError, match=r"settings\[0\].*steps >= 1"):
    adaptation.settings_table([dict(lr_predictor=1.0, lr_encoder=1.0, steps=0)])


def test_sgd_step_is_the_gradient_times_the_rate(setup):
  """`adapt.optimizer='sgd'`: one step moves each adapted leaf by exactly -lr * grad (per group), so its size
  follows the gradient's (Adam's first step is about lr per weight whatever the gradient); frozen leaves stay
  bit-identical; an unknown optimiser is refused naming the valid ones."""
  cfg = setup["cfg"].copy_and_resolve_references()
  cfg.adapt.optimizer = "sgd"
  cfg.adapt.lr_predictor, cfg.adapt.lr_encoder = 0.3, 0.05
  params, labels, opt = adaptation.prepare(cfg, setup["params"], jax.random.key(0))
  new, _, _ = adaptation.adapt_step(params, opt.init(params), setup["buffer"], loss_fn=_toy_loss, optimizer=opt,
                                    labels=labels)
  grads = jax.grad(lambda p: _toy_loss(p, setup["buffer"].batch())[0])(params)
  lr = {"predictor": 0.3, "encoder": 0.05, "frozen": 0.0}
  expected = jax.tree_util.tree_map(lambda l, p, g: p - lr[l] * g, labels, params, grads)
  chex.assert_trees_all_close(new, expected, rtol=1e-6, atol=1e-7)
  for l, a, b in zip(jax.tree_util.tree_leaves(labels), jax.tree_util.tree_leaves(new),
                     jax.tree_util.tree_leaves(params)):
    if l == "frozen":
      np.testing.assert_array_equal(a, b)
  with pytest.raises(UsageError, match="Unknown adaptation optimizer 'adamw'; valid optimizers: adam, sgd"):
    adaptation.make_adapt_optimizer(labels, 1e-3, 1e-3, "adamw")
