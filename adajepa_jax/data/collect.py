"""Offline data collection: one jitted program (vmap over episodes, `lax.scan` over steps) per shard.

The behaviour policy is the task's `explore_action` (PushT/PushObj: scripted pushes towards the block with
noise; mazes: random with momentum) or, for a fraction `expert_fraction` of the episodes, its
`expert_action` (PushT/PushObj: the expert-like pusher driving the block towards a target pose).
`collect_to_dir` writes shards one at a time, so the whole dataset is
never held in memory, and records the fraction of episodes whose block was touched. It resumes: a shard
of an identical earlier run is kept if it passes its checksum, else collected again. With a `mesh`
(`sharding.make_mesh()`), each shard's episodes are split over its devices, on several hosts too (after
`utils.join_hosts`: every process runs the same call, process 0 writes the files).

Example:
  env = envs.make('pusht', image_size=64)
  traj = collect(env, jax.random.split(key, 16), length=100)          # dict of arrays, leading axis 16
  manifest = collect_to_dir(env, 'workdir/data', episodes=1000, length=100, seed=0)
"""
import functools
import os
import time
from typing import Any, Callable, Optional

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from adajepa_jax import sharding, utils
from adajepa_jax.data import storage
from adajepa_jax.envs import base as envs_base

_TASK_ID_FIELDS = ("shape_id", "layout_id", "task_id")


def task_id(task: Any) -> jax.Array:
  """i32[] identifier of a task pytree (its shape/layout id), 0 if it has none."""
  for name in _TASK_ID_FIELDS:
    if hasattr(task, name):
      return jnp.asarray(getattr(task, name), jnp.int32)
  return jnp.int32(0)


def make_collect(env: envs_base.TaskEnv, length: int, expert_fraction: float = 0.0,
                 mesh: Optional[Mesh] = None) -> Callable[[jax.Array], dict[str, Any]]:
  """Builds the jitted collection program for `env` and `length` env steps per episode.

  Each episode follows `env.expert_action` with probability `expert_fraction`, else `env.explore_action`.
  With `mesh`, the episodes are sharded over its 'batch' axis (padded to a multiple of its size, pads
  dropped) and the results come back as numpy arrays, complete on every process.

  Returns:
    collect(keys u32[E, 2] or typed keys [E]) -> dict with pixels uint8[E, T+1, H, W, 3],
    proprio f32[E, T+1, P], actions f32[E, T, A], states f32[E, T+1, S], task_ids i32[E],
    contact f32[E] (1 if the task reported contact at any step; NaN if it does not report contact) and
    expert bool[E] (the episode followed the expert policy).
  """
  if int(length) < 1:
    raise ValueError(f"length must be >= 1 env steps, got {length!r}")
  length = int(length)
  expert_fraction = float(expert_fraction)
  if not 0.0 <= expert_fraction <= 1.0:
    raise ValueError(f"expert_fraction must be in [0, 1], got {expert_fraction!r}")
  if expert_fraction > 0 and not isinstance(env, envs_base.ExpertPolicy):
    raise ValueError(f"{type(env).__name__} has no expert policy (envs.base.ExpertPolicy); use "
                     "expert_fraction=0")

  def episode(key: jax.Array) -> dict[str, jax.Array]:
    k_reset, k_act, k_mix = jax.random.split(key, 3)
    s0 = env.reset(k_reset)
    expert = jax.random.uniform(k_mix) < expert_fraction

    def body(carry: tuple[envs_base.State, jax.Array], k: jax.Array
             ) -> tuple[tuple[envs_base.State, jax.Array], tuple[Any, Any, jax.Array, jax.Array]]:
      state, prev = carry
      action = env.explore_action(k, state, prev)
      if expert_fraction > 0:
        action = jnp.where(expert, env.expert_action(k, state, prev), action)
      nxt = env.step(state, action)
      contact = nxt.metrics.get("contact", jnp.float32(jnp.nan))
      return (nxt, action), (nxt.obs, nxt.info["state"], action, contact)

    _, (obs, states, actions, contact) = jax.lax.scan(
        body, (s0, jnp.zeros((env.action_size,), jnp.float32)), jax.random.split(k_act, length))
    cat = lambda first, rest: jnp.concatenate([first[None], rest], axis=0)
    return {
        "pixels": cat(s0.obs["pixels"], obs["pixels"]),
        "proprio": cat(s0.obs["proprio"], obs["proprio"]),
        "actions": actions,
        "states": cat(s0.info["state"], states),
        "task_ids": task_id(s0.info["task"]),
        "contact": jnp.max(contact),
        "expert": expert,
    }

  if mesh is None:
    return jax.jit(jax.vmap(episode))
  rows = NamedSharding(mesh, P("batch"))
  program = jax.jit(jax.vmap(episode), in_shardings=rows, out_shardings=rows)

  def run(keys):
    keys = np.asarray(keys)
    n = keys.shape[0]
    out = program(sharding.place(keys[sharding.pad_rows(n, mesh.devices.size)], rows))
    return jax.tree.map(lambda x: np.asarray(x)[:n], sharding.to_host(out, mesh))

  return run


@functools.lru_cache(maxsize=8)
def _cached_collect(env, length, expert_fraction=0.0, mesh=None):
  return make_collect(env, length, expert_fraction, mesh)


def collect(env: envs_base.TaskEnv, keys: jax.Array, length: int, expert_fraction: float = 0.0,
            mesh: Optional[Mesh] = None) -> dict[str, Any]:
  """Collects one batch of episodes (see `make_collect`); the jitted program is cached per settings."""
  return _cached_collect(env, int(length), float(expert_fraction), mesh)(keys)


def episode_keys(seed: int, episodes: int) -> jax.Array:
  """Per-episode keys: a pure function of (seed, episodes), independent of the shard size."""
  return jax.random.split(jax.random.PRNGKey(seed), episodes)


def collect_to_dir(env: envs_base.TaskEnv, data_dir: str, episodes: int, length: int, seed: int = 0,
                   shard_episodes: int = 250, manifest_extra: Optional[dict[str, Any]] = None,
                   progress: Optional[Callable[[int, int], Any]] = None,
                   expert_fraction: float = 0.0, mesh: Optional[Mesh] = None) -> dict[str, Any]:
  """Collects `episodes` episodes into shards under `data_dir`, one shard in memory at a time.

  Args:
    env: a task env (`TaskEnv`).
    data_dir: output directory (created); existing shards of an identical run are kept (resume) if they
      pass their checksum, and collected again if not.
    episodes, length: number of episodes and env steps per episode.
    seed: the data seed (the same seed gives identical data).
    shard_episodes: episodes per shard (the last shard may hold fewer).
    manifest_extra: JSON-serialisable dict stored in the manifest (e.g. task name and kwargs).
    progress: optional callable(shard_index, num_shards) called after each shard (e.g. a tqdm update).
    expert_fraction: fraction of episodes that follow the task's expert policy (see `make_collect`).
    mesh: shard each shard's episodes over this mesh's devices (`sharding.make_mesh()`; None: one device).
      On several processes every process makes the same call; process 0 decides what to resume and writes.

  Returns:
    The manifest dict (also written to `data_dir/manifest.json`); None on processes other than 0.
  """
  if int(episodes) < 1 or int(shard_episodes) < 1:
    raise ValueError(f"episodes and shard_episodes must be >= 1, got {episodes!r}, {shard_episodes!r}")
  episodes, length, shard_episodes = int(episodes), int(length), int(shard_episodes)
  shard_episodes = min(shard_episodes, episodes)
  config = dict(manifest_extra or {}, episodes=episodes, length=length, seed=int(seed),
                shard_episodes=shard_episodes, image_size=int(env.image_size))
  if expert_fraction:
    config["expert_fraction"] = float(expert_fraction)   # absent when 0: old manifests keep their fingerprint
  if env.physics_version:
    config["physics_version"] = int(env.physics_version)   # likewise absent when 0
  fp = storage.fingerprint(config)
  try:
    previous = storage.read_manifest(data_dir)
  except ValueError:
    previous = None
  done = {}
  if previous is not None and previous.get("fingerprint") == fp:
    done = {s["index"]: s for s in previous.get("shards", [])}

  keys = episode_keys(seed, episodes)
  num_shards = -(-episodes // shard_episodes)
  writer = jax.process_index() == 0
  kept_shards = [_verified(data_dir, previous, done[i]) if writer and i in done else None
                 for i in range(num_shards)]
  if jax.process_count() > 1:   # process 0's files decide; every process collects the same shards
    to_collect = np.asarray(multihost_utils.broadcast_one_to_all(
        np.array([k is None for k in kept_shards])))
  else:
    to_collect = np.array([k is None for k in kept_shards])
  program = _cached_collect(env, length, float(expert_fraction), mesh)
  shards, t0 = [], time.time()
  for i in range(num_shards):
    lo, hi = i * shard_episodes, min((i + 1) * shard_episodes, episodes)
    if not to_collect[i]:
      shards.append(kept_shards[i])
    else:
      # Pad the last shard to the full batch so the program compiles once; drop the padding after.
      batch = keys[lo:hi]
      if hi - lo < shard_episodes:
        batch = jnp.concatenate([batch, jnp.repeat(batch[-1:], shard_episodes - (hi - lo), axis=0)])
      traj = jax.device_get(program(batch))
      if writer:
        traj = {k: np.asarray(v)[: hi - lo] for k, v in traj.items()}
        contact = traj["contact"]
        shards.append(dict(storage.write_shard(data_dir, i, traj), index=i, episodes=hi - lo,
                           contact_episodes=int(np.nansum(contact > 0)),
                           expert_episodes=int(np.sum(traj["expert"])),
                           reports_contact=bool(np.all(np.isfinite(contact)))))
        storage.write_manifest(data_dir, _manifest(env, config, fp, shards, complete=False))
      del traj
    if progress is not None:
      progress(i, num_shards)
  if not writer:
    return None
  manifest = _manifest(env, config, fp, shards, complete=True)
  manifest["seconds"] = round(time.time() - t0, 2)
  manifest["host"] = utils.host_info()   # not part of the fingerprint
  storage.write_manifest(data_dir, manifest)
  return manifest


def _verified(data_dir, manifest, entry):
  """The manifest entry of an earlier run's shard, with its size recorded, if the shard passes its
  checksum; None (after a warning) if it must be collected again."""
  try:
    storage.verify_shard(data_dir, manifest, entry, checksum=True)
  except storage.ShardError as e:
    logging.warning("Collecting shard %s again: it %s", e.path, e.problem)
    return None
  return dict(entry, bytes=os.path.getsize(os.path.join(data_dir, entry["file"])))


def _manifest(env, config, fp, shards, complete):
  n = sum(s["episodes"] for s in shards)
  reports = all(s["reports_contact"] for s in shards) and n > 0
  contact = sum(s["contact_episodes"] for s in shards) / n if reports else None
  expert = sum(s.get("expert_episodes", 0) for s in shards) / n if n else None
  return dict(
      config,
      fingerprint=fp,
      complete=complete,
      collected_episodes=n,
      contact_fraction=contact,
      expert_episode_fraction=expert,
      action_size=int(env.action_size),
      proprio_size=int(env.proprio_size),
      state_size=int(env.state_size),
      shape_names=list(getattr(env, "shape_names", [])),
      shards=shards,
  )


def contact_sheet(pixels: np.ndarray, columns: int = 8) -> np.ndarray:
  """uint8[E, T+1, H, W, 3] -> one uint8 image: a row per episode, `columns` frames evenly spaced in time."""
  e, t1, h, w, _ = pixels.shape
  idx = np.linspace(0, t1 - 1, min(columns, t1)).round().astype(int)
  gap = 2
  sheet = np.full((e * (h + gap) + gap, len(idx) * (w + gap) + gap, 3), 255, np.uint8)
  for r in range(e):
    for c, t in enumerate(idx):
      y, x = gap + r * (h + gap), gap + c * (w + gap)
      sheet[y:y + h, x:x + w] = pixels[r, t]
  return sheet


def write_contact_sheet(data_dir: str, path: str, rows: int = 6) -> str:
  """Writes a PNG contact sheet of the first shard's episodes, expert and exploration rows alternating."""
  import imageio.v2 as imageio
  manifest = storage.read_manifest(data_dir)
  first = storage.open_shard(os.path.join(data_dir, manifest["shards"][0]["file"]))
  expert = np.asarray(first["expert"]) if "expert" in first else np.zeros(len(first["pixels"]), bool)
  by_kind = [list(np.flatnonzero(expert)), list(np.flatnonzero(~expert))]
  order = [i for pair in zip(*by_kind) for i in pair] + by_kind[0][len(by_kind[1]):] + by_kind[1][len(by_kind[0]):]
  imageio.imwrite(path, contact_sheet(np.asarray(first["pixels"])[np.array(order[:rows])]))
  return path


def collect_for_config(config: ml_collections.ConfigDict, workdir: str, progress: bool = True,
                       sheet_episodes: int = 6, data_parallel: Optional[bool] = None) -> Optional[dict[str, Any]]:
  """Collects (or resumes) a run config's offline dataset into `<workdir>/data`, with a contact sheet.

  Args:
    config: a run config (sections task: name, kwargs; data: episodes, length, seed, shard_episodes,
      expert_fraction).
    workdir: the run folder.
    progress: show a tqdm bar over shards.
    sheet_episodes: rows of `<workdir>/contact_sheet.png`.
    data_parallel: shard each shard's episodes over every device of every process; None:
      `sharding.data_parallel_default()` (on with several accelerators, off on CPU, whose committed data
      were collected on one device).

  Returns:
    The dataset's manifest (dict); None on processes other than 0 (process 0 writes the files).
  """
  from tqdm import tqdm

  from adajepa_jax import envs
  task, data = config.task, config.data
  env = envs.make(task.name, **task.kwargs)
  data_dir = os.path.join(workdir, "data")
  if data_parallel is None:
    data_parallel = sharding.data_parallel_default()
  with tqdm(total=-(-data.episodes // min(data.shard_episodes, data.episodes)), desc=f"collect {task.name}",
            unit="shard", disable=not progress or jax.process_index() != 0) as bar:
    manifest = collect_to_dir(
        env, data_dir, data.episodes, data.length, seed=data.seed, shard_episodes=data.shard_episodes,
        manifest_extra=dict(task=task.name, kwargs=task.kwargs.to_dict()),
        progress=lambda i, n: bar.update(1), expert_fraction=data.expert_fraction,
        mesh=sharding.make_mesh() if data_parallel else None)
  if manifest is not None:
    write_contact_sheet(data_dir, os.path.join(workdir, "contact_sheet.png"), sheet_episodes)
  return manifest
