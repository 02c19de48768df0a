"""Offline data collection: one jitted program (vmap over episodes, `lax.scan` over steps) per shard.

The exploration policy is the task's `explore_action` (PushT/PushObj: scripted pushes towards the block with
noise; mazes: random with momentum). `collect_to_dir` writes shards one at a time, so the whole dataset is
never held in memory, and records the fraction of episodes whose block was touched.

Example:
  env = envs.make('pusht', image_size=64)
  traj = collect(env, jax.random.split(key, 16), length=100)          # dict of arrays, leading axis 16
  manifest = collect_to_dir(env, 'workdir/data', episodes=1000, length=100, seed=0)
"""
import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from adajepa_jax.data import storage

_TASK_ID_FIELDS = ("shape_id", "layout_id", "task_id")


def task_id(task):
  """i32[] identifier of a task pytree (its shape/layout id), 0 if it has none."""
  for name in _TASK_ID_FIELDS:
    if hasattr(task, name):
      return jnp.asarray(getattr(task, name), jnp.int32)
  return jnp.int32(0)


def make_collect(env, length):
  """Builds the jitted collection program for `env` and `length` env steps per episode.

  Returns:
    collect(keys u32[E, 2] or typed keys [E]) -> dict with pixels uint8[E, T+1, H, W, 3],
    proprio f32[E, T+1, P], actions f32[E, T, A], states f32[E, T+1, S], task_ids i32[E] and
    contact f32[E] (1 if the task reported contact at any step; NaN if it does not report contact).
  """
  if int(length) < 1:
    raise ValueError(f"length must be >= 1 env steps, got {length!r}")
  length = int(length)

  def episode(key):
    k_reset, k_act = jax.random.split(key)
    s0 = env.reset(k_reset)

    def body(carry, k):
      state, prev = carry
      action = env.explore_action(k, state, prev)
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
    }

  return jax.jit(jax.vmap(episode))


@functools.lru_cache(maxsize=8)
def _cached_collect(env, length):
  return make_collect(env, length)


def collect(env, keys, length):
  """Collects one batch of episodes (see `make_collect`); the jitted program is cached per (env, length)."""
  return _cached_collect(env, int(length))(keys)


def episode_keys(seed, episodes):
  """Per-episode keys: a pure function of (seed, episodes), independent of the shard size."""
  return jax.random.split(jax.random.PRNGKey(seed), episodes)


def collect_to_dir(env, data_dir, episodes, length, seed=0, shard_episodes=250, manifest_extra=None,
                   progress=None):
  """Collects `episodes` episodes into shards under `data_dir`, one shard in memory at a time.

  Args:
    env: a task env (`TaskEnv`).
    data_dir: output directory (created); existing shards of an identical run are kept (resume).
    episodes, length: number of episodes and env steps per episode.
    seed: the data seed (the same seed gives identical data).
    shard_episodes: episodes per shard (the last shard may hold fewer).
    manifest_extra: JSON-serialisable dict stored in the manifest (e.g. task name and kwargs).
    progress: optional callable(shard_index, num_shards) called after each shard (e.g. a tqdm update).

  Returns:
    The manifest dict (also written to `data_dir/manifest.json`).
  """
  if int(episodes) < 1 or int(shard_episodes) < 1:
    raise ValueError(f"episodes and shard_episodes must be >= 1, got {episodes!r}, {shard_episodes!r}")
  episodes, length, shard_episodes = int(episodes), int(length), int(shard_episodes)
  shard_episodes = min(shard_episodes, episodes)
  config = dict(manifest_extra or {}, episodes=episodes, length=length, seed=int(seed),
                shard_episodes=shard_episodes, image_size=int(env.image_size))
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
  program = _cached_collect(env, length)
  shards, t0 = [], time.time()
  for i in range(num_shards):
    lo, hi = i * shard_episodes, min((i + 1) * shard_episodes, episodes)
    if i in done and os.path.exists(os.path.join(data_dir, done[i]["file"])):
      shards.append(done[i])
    else:
      # Pad the last shard to the full batch so the program compiles once; drop the padding after.
      batch = keys[lo:hi]
      if hi - lo < shard_episodes:
        batch = jnp.concatenate([batch, jnp.repeat(batch[-1:], shard_episodes - (hi - lo), axis=0)])
      traj = jax.device_get(program(batch))
      traj = {k: np.asarray(v)[: hi - lo] for k, v in traj.items()}
      name, digest = storage.write_shard(data_dir, i, traj)
      contact = traj["contact"]
      shards.append(dict(index=i, file=name, episodes=hi - lo, checksum=digest,
                         contact_episodes=int(np.nansum(contact > 0)),
                         reports_contact=bool(np.all(np.isfinite(contact)))))
      del traj
    storage.write_manifest(data_dir, _manifest(env, config, fp, shards, complete=False))
    if progress is not None:
      progress(i, num_shards)
  manifest = _manifest(env, config, fp, shards, complete=True)
  manifest["seconds"] = round(time.time() - t0, 2)
  storage.write_manifest(data_dir, manifest)
  return manifest


def _manifest(env, config, fp, shards, complete):
  n = sum(s["episodes"] for s in shards)
  reports = all(s["reports_contact"] for s in shards) and n > 0
  contact = sum(s["contact_episodes"] for s in shards) / n if reports else None
  return dict(
      config,
      fingerprint=fp,
      complete=complete,
      collected_episodes=n,
      contact_fraction=contact,
      action_size=int(env.action_size),
      proprio_size=int(env.proprio_size),
      state_size=int(env.state_size),
      shape_names=list(getattr(env, "shape_names", [])),
      shards=shards,
  )
