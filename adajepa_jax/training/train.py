"""World-model pretraining: a pure, jitted-once `train_step` and the `train_and_evaluate` loop.

Resume is exact: the data order depends only on (seed, segment), where a segment is the `checkpoint_every`
steps between two checkpoints, and a resumed run restarts at a checkpoint boundary. So a run killed at any
point and resumed reaches the same final params as an uninterrupted one.

Workdir layout: config.json, metrics.csv (step, split, metric, value), tb/ (TensorBoard),
checkpoints/{latest,best}/<step>/, evidence.json (validation vs copy-last baseline, latent std, probe R^2).

Example:
  summary = train.train_and_evaluate(pusht.get_config("cpu"), "workdirs/pusht")
"""
import csv
import json
import os
import time
from typing import Any, Callable, Iterator, Optional

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

from adajepa_jax import sharding, utils
from adajepa_jax.errors import UsageError
from adajepa_jax.models import world_model
from adajepa_jax.training import checkpoint
from adajepa_jax.training import losses
from adajepa_jax.training import probes


@flax.struct.dataclass
class TrainState:
  """step: i32[]; params: world-model param tree; opt_state: optax state."""
  step: jax.Array
  params: Any
  opt_state: Any


def obs_spec_from_batch(batch: dict[str, Any], history: int) -> dict[str, int]:
  """The world model's obs_spec from a loader batch {'pixels' [B, h+1, H, W, 3], 'proprio', 'actions'}."""
  return world_model.obs_spec(int(batch["pixels"].shape[-2]), int(batch["proprio"].shape[-1]),
                              int(batch["actions"].shape[-1]), int(history))


def param_labels(params: Any) -> Any:
  """'encoder' for params['encoder'], 'predictor' for everything else (predictor, action/proprio encoders,
  decoder, adapters): the two learning-rate groups."""
  return {k: jax.tree.map(lambda _, k=k: "encoder" if k == "encoder" else "predictor", v)
          for k, v in params.items()}


def _schedule(lr, train_cfg):
  steps, warmup = int(train_cfg.steps), int(train_cfg.warmup_steps)
  return optax.warmup_cosine_decay_schedule(
      0.0, lr, warmup, max(steps, warmup + 1), end_value=lr * float(train_cfg.final_lr_fraction))


def make_pretrain_optimizer(train_cfg: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Global-norm clipping, then AdamW with separate warmup-cosine learning rates for encoder / predictor."""
  wd = float(train_cfg.weight_decay)
  return optax.chain(
      optax.clip_by_global_norm(float(train_cfg.grad_clip)),
      optax.multi_transform(
          {"encoder": optax.adamw(_schedule(float(train_cfg.lr_encoder), train_cfg), weight_decay=wd),
           "predictor": optax.adamw(_schedule(float(train_cfg.lr_predictor), train_cfg), weight_decay=wd)},
          param_labels))


def create_train_state(wm: world_model.WorldModel, tx: optax.GradientTransformation,
                       key: jax.Array) -> TrainState:
  """A fresh TrainState from `wm.init(key)`."""
  params = wm.init(key)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=jax.jit(tx.init)(params))


def make_train_step(wm: world_model.WorldModel, train_cfg: ml_collections.ConfigDict,
                    tx: optax.GradientTransformation) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
  """Returns the pure `train_step(state, batch) -> (state, metrics)` (jit it once)."""
  loss_fn = losses.make_train_loss(wm, train_cfg)

  def train_step(state, batch):
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = dict(metrics, grad_norm=optax.tree.norm(grads))
    return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics

  return train_step


class DataParallel:
  """Data-parallel placement for the train step: each global batch is sharded over the mesh's 'batch' axis
  (`NamedSharding(mesh, P('batch'))`), the TrainState replicated. On several hosts every process reads the
  same global batch (the data order is a function of the seed) and contributes its own slice.

  Example:
    dp = DataParallel(sharding.make_mesh(), batch_size=64)
    state = dp.replicate(state)
    state, metrics = train_step(state, dp.shard(batch))   # train_step jitted once
  """

  def __init__(self, mesh: jax.sharding.Mesh, batch_size: int):
    n = mesh.devices.size
    if batch_size % n:
      raise UsageError(f"train.batch_size={batch_size} does not divide over {n} devices for data-parallel "
                       f"training; use a multiple of {n}")
    self.mesh = mesh
    self.batch = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
    self.replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

  def replicate(self, tree: Any) -> Any:
    """Places a host-local tree (the same on every process) replicated over the mesh."""
    return sharding.place(tree, self.replicated)

  def shard(self, batch: dict[str, Any]) -> dict[str, jax.Array]:
    """A global batch (leading axis B, the same on every process) as arrays sharded over the mesh."""
    return sharding.place(batch, self.batch)


def make_eval_step(wm: world_model.WorldModel,
                   train_cfg: ml_collections.ConfigDict) -> Callable[[Any, dict], dict]:
  """Returns `eval_step(params, batch) -> metrics` (the training loss terms, no gradients)."""
  loss_fn = losses.make_train_loss(wm, train_cfg)
  return lambda params, batch: loss_fn(params, batch)[1]


def segment_seed(seed: int, segment: int, epoch: int = 0, stream: int = 1) -> int:
  """The loader seed of a data segment: a deterministic function of (seed, stream, segment, epoch).

  stream 1 is training, stream 0 the fixed validation batches.
  """
  return int(np.random.SeedSequence([int(seed), int(stream), int(segment), int(epoch)]).generate_state(1)[0])


def batch_stream(dataset: Any, batch_size: int, seed: int, start_step: int,
                 segment_len: int) -> Iterator[dict[str, np.ndarray]]:
  """Yields training batches for steps start_step, start_step + 1, ... (start_step % segment_len == 0).

  Segment s (steps [s * segment_len, (s + 1) * segment_len)) draws from `dataset.batches(batch_size,
  segment_seed(seed, s))`, restarted with a new epoch seed if exhausted; incomplete batches are skipped.
  """
  if start_step % segment_len:
    raise ValueError(f"start_step {start_step} is not a multiple of the segment length {segment_len}")
  step = start_step
  while True:
    seg, epoch, left = step // segment_len, 0, segment_len
    while left:
      got = 0
      for batch in dataset.batches(batch_size, segment_seed(seed, seg, epoch)):
        if batch["pixels"].shape[0] != batch_size:
          continue
        yield batch
        got, left, step = got + 1, left - 1, step + 1
        if not left:
          break
      if left and not got:
        raise ValueError(f"dataset yields no full batch of size {batch_size}")
      epoch += 1


def _mean_metrics(ms):
  return {k: float(np.mean([float(m[k]) for m in ms])) for k in ms[0]}


def _dataset_fingerprint(dataset, data_dir):
  fp = getattr(dataset, "fingerprint", None)
  if fp is None and data_dir and os.path.exists(os.path.join(data_dir, "manifest.json")):
    with open(os.path.join(data_dir, "manifest.json")) as f:
      fp = json.load(f).get("fingerprint")
  return fp


class _MetricWriter:
  """CSV (long format) + TensorBoard writer; on several hosts only process 0 writes."""

  def __init__(self, workdir, tensorboard=True):
    self._f = self._tb = None
    if jax.process_index() != 0:
      return
    path = os.path.join(workdir, "metrics.csv")
    new = not os.path.exists(path)
    self._f = open(path, "a", newline="")
    self._csv = csv.writer(self._f)
    if new:
      self._csv.writerow(["step", "split", "metric", "value"])
    self._tb = None
    if tensorboard:
      from tensorboardX import SummaryWriter
      self._tb = SummaryWriter(os.path.join(workdir, "tb"))

  def write(self, step, split, metrics):
    if self._f is None:
      return
    for k, v in sorted(metrics.items()):
      self._csv.writerow([step, split, k, f"{float(v):.6g}"])
      if self._tb is not None:
        self._tb.add_scalar(f"{split}/{k}", float(v), step)
    self._f.flush()

  def close(self):
    if self._f is not None:
      self._f.close()
    if self._tb is not None:
      self._tb.close()


def make_datasets(config: ml_collections.ConfigDict, data_dir: str) -> tuple[Any, Any]:
  from adajepa_jax.data import dataset as dataset_lib  # the data package, imported when needed

  kw = dict(history=int(config.data.history), frameskip=int(config.data.frameskip),
            val_fraction=float(config.data.val_fraction), seed=int(config.data.seed))
  return (dataset_lib.WindowDataset(data_dir, split="train", **kw),
          dataset_lib.WindowDataset(data_dir, split="val", **kw))


def validation_batches(val_ds: Any, train_cfg: ml_collections.ConfigDict) -> list[dict[str, np.ndarray]]:
  """The fixed validation batches (the first `eval_batches` full batches of the val split's stream 0)."""
  bs, out = int(train_cfg.batch_size), []
  for b in val_ds.batches(bs, segment_seed(int(train_cfg.seed), 0, stream=0)):
    if b["pixels"].shape[0] == bs:
      out.append(jax.device_put(b))
    if len(out) >= int(train_cfg.eval_batches):
      break
  if not out:
    raise ValueError(f"validation split yields no full batch of size {bs}")
  return out


def probe_frames(train_ds: Any, val_ds: Any, train_cfg: ml_collections.ConfigDict) -> Optional[tuple]:
  """(train frames, held-out frames) for the linear probe, or None when `train.probe_batches` is 0."""
  nb, bs, seed = int(train_cfg.probe_batches), int(train_cfg.batch_size), int(train_cfg.seed)
  if not nb:
    return None
  return (probes.window_frames(train_ds, bs, nb, segment_seed(seed, 0, stream=2)),
          probes.window_frames(val_ds, bs, max(1, nb // 2), segment_seed(seed, 0, stream=3)))


def checkpoint_evidence(path: str, config: ml_collections.ConfigDict, wm: world_model.WorldModel,
                        eval_step: Callable, val_batches: list, probe_data: Optional[tuple]) -> dict[str, Any]:
  """`evidence` of the checkpoint at `path`, written to `<path>/evidence.json` and returned.

  path: a training workdir (its best checkpoint, else latest: the one evaluation loads) or a manager folder
    such as `<workdir>/checkpoints/latest`.
  """
  _, params, stored = checkpoint.load(path)
  out = evidence(wm, params, val_batches, eval_step, probe_data, config.task.name)
  out["checkpoint_step"] = int(stored.checkpoint_meta["step"])
  if jax.process_index() == 0:
    with open(os.path.join(path, "evidence.json"), "w") as f:
      json.dump(out, f, indent=2)
  return out


def read_evidence(path: str, step: int) -> dict[str, Any]:
  """The evidence.json written for the checkpoint at `path` (as `checkpoint_evidence` names it); UsageError if it
  is missing or describes another step than `step` (a table must report the checkpoint it evaluates)."""
  file = os.path.join(path, "evidence.json")
  redo = f"python experiments/evidence.py --config=adajepa_jax/configs/stored.py:{path}"
  if not os.path.exists(file):
    raise UsageError(f"No evidence.json in {path!r}; write it with `{redo}`")
  with open(file) as f:
    ev = json.load(f)
  if ev.get("checkpoint_step") != step:
    raise UsageError(f"{file} describes step {ev.get('checkpoint_step')}, but the evaluated checkpoint is step "
                     f"{step}; rewrite it with `{redo}`")
  return ev


def evidence(wm: world_model.WorldModel, params: Any, val_batches: list, eval_step: Callable,
             probe_data: Optional[tuple] = None, task_name: str = "") -> dict[str, Any]:
  """Planning-readiness numbers: val prediction loss vs the copy-last baseline, latent std, probe R^2.

  probe_data: optional (train_frames, test_frames) for `probes.probe_report`.
  """
  ev = _mean_metrics([jax.device_get(eval_step(params, b)) for b in val_batches])
  out = {"val_pred_loss": ev["pred_loss"], "val_copy_loss": ev["copy_loss"],
         "pred_over_copy": ev["pred_loss"] / max(ev["copy_loss"], 1e-12),
         "z_std_min": ev["z_std_min"], "z_std_mean": ev["z_std_mean"]}
  if probe_data is not None:
    out["probe"] = probes.probe_report(wm, params, *probe_data, task_name)
  return out


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, train_ds: Any = None, val_ds: Any = None,
                       stop_at: Optional[int] = None, progress: bool = True,
                       data_parallel: Optional[bool] = None) -> dict[str, Any]:
  """Trains (or resumes) a world model under `workdir` and returns a summary dict.

  Args:
    config: the full run config (sections data, model, train, task).
    workdir: run folder; an existing checkpoints/latest is resumed.
    train_ds, val_ds: objects with `.batches(batch_size, seed)` (default: `data.dataset.WindowDataset` on
      `config.train.data_dir` or `<workdir>/data`).
    stop_at: stop after this many steps without finishing (simulates an interruption; tests).
    progress: show a tqdm bar.
    data_parallel: shard each batch over every device with the params replicated (`DataParallel`; several
      hosts after `jax.distributed.initialize()`); None: `sharding.data_parallel_default()`. A run may resume with
      another device count or setting (checkpoints hold plain arrays).

  Returns:
    {'step', 'params', 'val' (last validation metrics), 'best_val', 'evidence' (None when stopped early),
    'world_model' (the `WorldModel` the params belong to)}.
  """
  tc = config.train
  os.makedirs(workdir, exist_ok=True)
  data_dir = tc.data_dir or os.path.join(workdir, "data")
  if train_ds is None or val_ds is None:
    train_ds, val_ds = make_datasets(config, data_dir)
  seed, bs, steps = int(tc.seed), int(tc.batch_size), int(tc.steps)
  seg = int(tc.checkpoint_every)
  if seg < 1 or int(tc.eval_every) < 1:
    raise ValueError(f"train.checkpoint_every and eval_every must be >= 1, got {seg}, {tc.eval_every}")
  if data_parallel is None:
    data_parallel = sharding.data_parallel_default()
  dp = DataParallel(sharding.make_mesh(), bs) if data_parallel else None
  val_batches = validation_batches(val_ds, tc)
  spec = obs_spec_from_batch(val_batches[0], config.data.history)
  ckpt_dir = os.path.join(workdir, "checkpoints")
  latest = checkpoint.make_manager(os.path.join(ckpt_dir, "latest"), max_to_keep=2)
  best = checkpoint.make_manager(os.path.join(ckpt_dir, "best"), max_to_keep=1)
  best_val = float("inf")
  resume = latest.latest_step() is not None
  if resume:  # fail fast, before building anything, if the workdir holds another model
    stored, meta = checkpoint.restore_config(latest)
    try:
      checkpoint.check_config(stored, config, latest.directory, sections=("model",))
    except ValueError:
      latest.close()
      best.close()
      raise
  wm = world_model.make_world_model(config.model, spec)
  tx = make_pretrain_optimizer(tc)
  state = create_train_state(wm, tx, jax.random.key(seed))
  if dp is not None:
    state = dp.replicate(state)   # restored checkpoints take this placement too
  if resume:
    params, opt_state, step = checkpoint.restore(latest, state.params, state.opt_state)
    state = TrainState(step=jnp.asarray(step, jnp.int32), params=params, opt_state=opt_state)
    if dp is not None:   # params and optimiser state come back replicated, as the abstract state is
      state = state.replace(step=dp.replicate(np.asarray(step, np.int32)))
    best_val = float(meta.get("best_val", best_val))
    logging.info("Resumed from %s at step %d", latest.directory, int(step))
  if jax.process_index() == 0:
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=2))
  meta = {"obs_spec": spec, "dataset_fingerprint": _dataset_fingerprint(train_ds, data_dir),
          "task": config.task.name, "host": utils.host_info()}

  train_step = jax.jit(make_train_step(wm, tc, tx))
  eval_step = jax.jit(make_eval_step(wm, tc))
  writer = _MetricWriter(workdir, tensorboard=bool(tc.tensorboard))
  start = int(state.step)
  end = steps if stop_at is None else min(steps, int(stop_at))
  val = None
  log_every = int(tc.log_every)
  bar = None
  if progress:
    import tqdm
    bar = tqdm.tqdm(total=steps, initial=start, desc="train", dynamic_ncols=True)
  stream = batch_stream(train_ds, bs, seed, start, seg)
  t0 = time.time()
  try:
    for step in range(start, end):
      batch = next(stream)
      state, metrics = train_step(state, batch if dp is None else dp.shard(batch))
      done = step + 1
      if done % log_every == 0 or done == steps:
        m = jax.device_get(metrics)
        m["steps_per_s"] = (done - start) / (time.time() - t0)
        writer.write(done, "train", m)
        if bar is not None:
          bar.set_postfix(loss=f"{float(m['loss']):.4f}")
      if done % int(tc.eval_every) == 0 or done == steps:
        val = _mean_metrics([jax.device_get(eval_step(state.params, b)) for b in val_batches])
        writer.write(done, "val", val)
        if val["pred_loss"] < best_val:
          best_val = val["pred_loss"]
          checkpoint.save(best, done, state.params, state.opt_state, config,
                          dict(meta, step=done, val=val, best_val=best_val))
      if done % seg == 0 or done == steps:
        checkpoint.save(latest, done, state.params, state.opt_state, config,
                        dict(meta, step=done, val=val, best_val=best_val))
      if bar is not None:
        bar.update(1)
  finally:
    if bar is not None:
      bar.close()
    writer.close()
    latest.close()
    best.close()
  summary = {"step": int(state.step), "params": state.params, "val": val, "best_val": best_val,
             "evidence": None, "world_model": wm}
  if int(state.step) == steps:
    # Evidence describes the checkpoint that evaluation loads (best, else latest), not necessarily the final
    # params.
    summary["evidence"] = checkpoint_evidence(workdir, config, wm, eval_step, val_batches,
                                              probe_frames(train_ds, val_ds, tc))
  return summary
