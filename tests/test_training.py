"""Training: loss falls, checkpoints round-trip bit for bit, resume == uninterrupted, config checks, probes"""
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adajepa_jax import models, sharding
from adajepa_jax.configs import pusht
from adajepa_jax.errors import UsageError
from adajepa_jax.training import checkpoint, losses, probes, synthetic, train


def _config():
  cfg = pusht.get_config("tiny")
  cfg.train.update(steps=8, eval_every=4, checkpoint_every=4, log_every=4, warmup_steps=2,
                   tensorboard=True, curvature_weight=0.1, vicreg_var_weight=0.1, vicreg_cov_weight=0.01)
  return cfg


@pytest.fixture(scope="module")
def data():
  return synthetic.SyntheticWindows(48, seed=0), synthetic.SyntheticWindows(16, seed=1)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, data):
  workdir = str(tmp_path_factory.mktemp("full"))
  return workdir, train.train_and_evaluate(_config(), workdir, *data, progress=False)


def test_loss_decreases_on_tiny_dataset(data):
  cfg = _config()
  batch = next(data[0].batches(cfg.train.batch_size, 0))
  spec = train.obs_spec_from_batch(batch, cfg.data.history)
  wm = models.make_world_model(cfg.model, spec)
  tx = train.make_pretrain_optimizer(cfg.train)
  state = train.create_train_state(wm, tx, jax.random.key(0))
  step = jax.jit(chex.assert_max_traces(train.make_train_step(wm, cfg.train, tx), n=1))  # no recompiles
  history = []
  for _ in range(cfg.train.steps):
    state, metrics = step(state, batch)
    history.append(float(metrics["loss"]))
  final = float(train.make_eval_step(wm, cfg.train)(state.params, batch)["loss"])
  third = len(history) // 3
  assert int(state.step) == cfg.train.steps
  assert final < history[0] and np.mean(history[-third:]) < np.mean(history[:third]), history


def test_optimizer_uses_separate_learning_rates():
  cfg = _config()
  cfg.train.update(lr_encoder=0.0, warmup_steps=1)
  params = {"encoder": {"w": jnp.ones(3)}, "predictor": {"w": jnp.ones(3)},
            "action_encoder": {"w": jnp.ones(2)}}
  assert train.param_labels(params) == {"encoder": {"w": "encoder"}, "predictor": {"w": "predictor"},
                                        "action_encoder": {"w": "predictor"}}
  tx = train.make_pretrain_optimizer(cfg.train)
  opt_state = tx.init(params)
  grads = jax.tree.map(jnp.ones_like, params)
  for _ in range(2):            # the warmup starts at lr 0
    updates, opt_state = tx.update(grads, opt_state, params)
  assert float(jnp.abs(updates["encoder"]["w"]).max()) == 0.0
  assert float(jnp.abs(updates["predictor"]["w"]).min()) > 0.0
  assert float(jnp.abs(updates["action_encoder"]["w"]).min()) > 0.0


def test_checkpoint_round_trip_is_bit_identical(tmp_path, data):
  cfg = _config()
  batch = next(data[0].batches(cfg.train.batch_size, 0))
  wm = models.make_world_model(cfg.model, train.obs_spec_from_batch(batch, cfg.data.history))
  tx = train.make_pretrain_optimizer(cfg.train)
  state = train.create_train_state(wm, tx, jax.random.key(0))
  state, _ = jax.jit(train.make_train_step(wm, cfg.train, tx))(state, batch)
  manager = checkpoint.make_manager(str(tmp_path / "ckpt"))
  checkpoint.save(manager, 1, state.params, state.opt_state, cfg, {"note": "x"})
  fresh = train.create_train_state(wm, tx, jax.random.key(1))
  params, opt_state, step = checkpoint.restore(manager, fresh.params, fresh.opt_state)
  manager.close()
  assert jax.tree.structure(opt_state) == jax.tree.structure(state.opt_state)   # optax types survive
  chex.assert_trees_all_equal(params, state.params)
  chex.assert_trees_all_equal(opt_state, state.opt_state)
  assert int(step) == 1


def test_resume_after_kill_equals_uninterrupted(tmp_path, data, full_run):
  _, full = full_run
  workdir = str(tmp_path / "killed")
  stopped = train.train_and_evaluate(_config(), workdir, *data, stop_at=6, progress=False)
  assert stopped["step"] == 6 and stopped["evidence"] is None
  # The "kill" happened after the checkpoint at step 4: the resumed run restarts there.
  assert checkpoint.make_manager(os.path.join(workdir, "checkpoints", "latest")).latest_step() == 4
  resumed = train.train_and_evaluate(_config(), workdir, *data, progress=False)
  assert resumed["step"] == full["step"] == _config().train.steps
  chex.assert_trees_all_equal(resumed["params"], full["params"])


def test_run_outputs_and_load(full_run, data):
  workdir, summary = full_run
  for name in ("config.json", "metrics.csv", "evidence.json", "tb"):
    assert os.path.exists(os.path.join(workdir, name)), name
  with open(os.path.join(workdir, "metrics.csv")) as f:
    rows = f.read().splitlines()
  assert rows[0] == "step,split,metric,value" and any(",val,pred_loss," in r for r in rows)
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(summary["params"]))
  ev = summary["evidence"]
  assert ev["val_copy_loss"] > 0 and np.isfinite(ev["val_pred_loss"]) and ev["z_std_min"] >= 0
  _, params, cfg = checkpoint.load(os.path.join(workdir, "checkpoints", "latest"), config=_config())
  chex.assert_trees_all_equal(params, summary["params"])
  assert cfg.checkpoint_meta["dataset_fingerprint"] == data[0].fingerprint
  assert cfg.model.latent_dim == _config().model.latent_dim
  _, best_params, best_cfg = checkpoint.load(workdir)      # workdir -> checkpoints/best
  assert jax.tree.structure(best_params) == jax.tree.structure(params)
  # The evidence describes the checkpoint evaluation loads (best), whatever the final step.
  assert ev["checkpoint_step"] == best_cfg.checkpoint_meta["step"]


def test_evidence_of_any_checkpoint(full_run, data):
  workdir, summary = full_run
  cfg = _config()
  wm = summary["world_model"]
  args = (cfg, wm, jax.jit(train.make_eval_step(wm, cfg.train)), train.validation_batches(data[1], cfg.train),
          train.probe_frames(*data, cfg.train))
  # The same batches and probe frames reproduce the evidence training wrote for its evaluated checkpoint.
  assert train.checkpoint_evidence(workdir, *args) == summary["evidence"]
  latest = os.path.join(workdir, "checkpoints", "latest")
  ev = train.checkpoint_evidence(latest, *args)
  assert ev["checkpoint_step"] == cfg.train.steps and "probe" in ev
  assert train.read_evidence(latest, cfg.train.steps) == ev
  with pytest.raises(UsageError, match=f"describes step {cfg.train.steps}, but the evaluated checkpoint is step 4"):
    train.read_evidence(latest, 4)
  with pytest.raises(UsageError, match="No evidence.json in .*experiments/evidence.py"):
    train.read_evidence(os.path.join(workdir, "checkpoints", "best"), 4)
  _, params, _ = checkpoint.load(latest)   # the file beside the step folders does not disturb orbax
  chex.assert_trees_all_equal(params, summary["params"])
  name = os.path.basename(workdir)
  assert checkpoint.training_workdir(latest) == os.path.normpath(workdir)
  assert checkpoint.run_label(latest) == f"{name}@latest" and checkpoint.run_label(workdir) == name


def test_mismatched_config_raises(full_run, data):
  workdir, _ = full_run
  other = _config()
  other.model.latent_dim = 24
  with pytest.raises(ValueError, match=r"model\.latent_dim: 16 != 24"):
    checkpoint.load(workdir, config=other)
  with pytest.raises(ValueError, match=r"model\.latent_dim"):
    train.train_and_evaluate(other, workdir, *data, progress=False)
  with pytest.raises(ValueError, match="No checkpoint"):
    checkpoint.load(os.path.join(workdir, "nonexistent"))


def test_regularisers():
  t = jnp.linspace(0.0, 1.0, 5)
  line = jnp.stack([t, 2 * t], -1)[None, :, None, :]                      # [1, 5, 1, 2]
  zigzag = jnp.stack([t, jnp.array([0.0, 1.0, 0.0, 1.0, 0.0])], -1)[None, :, None, :]
  assert float(losses.curvature_loss(line)) < 1e-5
  assert float(losses.curvature_loss(zigzag)) > 0.5
  z = jax.random.normal(jax.random.key(0), (512, 8))
  var_ok, cov_ok = losses.vicreg_terms(z)
  var_bad, cov_bad = losses.vicreg_terms(jnp.concatenate([0.01 * z[:, :1]] * 8, 1))
  assert float(var_ok) < 0.1 < float(var_bad)
  assert float(cov_ok) < float(cov_bad) or float(var_bad) > 0.9


def test_linear_probe_separates_signal_from_noise():
  key1, key2, key3 = jax.random.split(jax.random.key(0), 3)
  z = jax.random.normal(key1, (400, 6))
  w = jax.random.normal(key2, (6, 2))
  y = z @ w + 0.01 * jax.random.normal(key3, (400, 2))
  good = probes.linear_probe(z[:300], y[:300], z[300:], y[300:])
  assert float(good["r2_mean"]) > 0.95
  noise = jax.random.normal(key3, (400, 2))
  bad = probes.linear_probe(z[:300], noise[:300], z[300:], noise[300:])
  assert float(bad["r2_mean"]) < 0.2


def test_probe_report_on_window_datasets(full_run, data):
  _, summary = full_run
  train_frames = probes.window_frames(data[0], 8, 3, seed=0)
  test_frames = probes.window_frames(data[1], 8, 2, seed=0)
  assert train_frames["pixels"].shape == (3 * 8 * 4, 32, 32, 3) and train_frames["states"].shape[-1] == 5
  rep = probes.probe_report(summary["world_model"], summary["params"], train_frames, test_frames, "pusht")
  assert set(rep["r2"]) == {"agent_x", "agent_y", "block_x", "block_y", "block_cos", "block_sin"}
  assert np.isfinite(rep["r2"]["agent_x"]) and rep["frames"] == 96
  assert "probe" in summary["evidence"] and set(summary["evidence"]["probe"]["r2"]) == set(rep["r2"])


def test_sharded_step_equals_the_single_device_step(data):
  """Data-parallel: the same global batch sharded over the 2 host devices (params replicated) gives the
  single-device step's params and metrics, up to float summation order; a batch that does not divide over
  the devices is refused."""
  cfg = _config()
  batch = next(data[0].batches(cfg.train.batch_size, 0))
  wm = models.make_world_model(cfg.model, train.obs_spec_from_batch(batch, cfg.data.history))
  tx = train.make_pretrain_optimizer(cfg.train)
  state = train.create_train_state(wm, tx, jax.random.key(0))
  step = jax.jit(train.make_train_step(wm, cfg.train, tx))
  single, m_single = step(state, batch)
  dp = train.DataParallel(sharding.make_mesh(), cfg.train.batch_size)
  sharded_batch = dp.shard(batch)
  assert len(jax.devices()) == 2 and sharded_batch["pixels"].sharding.spec == jax.sharding.PartitionSpec("batch")
  assert len(sharded_batch["pixels"].addressable_shards) == 2
  sharded, m_sharded = step(dp.replicate(state), sharded_batch)
  assert all(x.sharding.is_fully_replicated for x in jax.tree.leaves(sharded.params))
  chex.assert_trees_all_close(sharded.params, single.params, rtol=1e-5, atol=1e-6)
  chex.assert_trees_all_close(m_sharded, m_single, rtol=1e-4, atol=1e-6)
  with pytest.raises(UsageError, match="batch_size=7 does not divide over 2 devices"):
    train.DataParallel(sharding.make_mesh(), 7)


def test_training_resumes_across_a_change_in_device_count(tmp_path, full_run, data, monkeypatch):
  """Half the run data-parallel on 2 devices, the rest resumed on one device from its checkpoint: the
  checkpoint restores bit for bit on one device, the resumed run starts at step 4, and it ends near the
  uninterrupted single-device run (float summation order differs, and Adam amplifies it in tiny weights)."""
  _, summary = full_run
  cfg = _config()
  half = train.train_and_evaluate(cfg, str(tmp_path), *data, stop_at=4, progress=False, data_parallel=True)
  assert half["step"] == 4 and half["evidence"] is None
  _, restored, _ = checkpoint.load(os.path.join(str(tmp_path), "checkpoints", "latest"), step=4)
  chex.assert_trees_all_equal(restored, jax.device_get(half["params"]))
  starts = []
  stream = train.batch_stream
  monkeypatch.setattr(train, "batch_stream", lambda ds, bs, seed, start, seg: starts.append(start) or stream(
      ds, bs, seed, start, seg))
  rest = train.train_and_evaluate(cfg, str(tmp_path), *data, progress=False, data_parallel=False)
  assert starts == [4] and rest["step"] == cfg.train.steps
  chex.assert_trees_all_close(rest["params"], summary["params"], atol=1e-3)
