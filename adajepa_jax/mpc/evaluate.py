"""Batched evaluation: `jit(vmap(episode))` with the episode axis sharded over all devices.

Every episode owns its adapted params (vmap gives each its own copy of the carry). An episode is named by its
key and the index of its shift condition in `program.conditions`, so one program evaluates episodes x seeds x
conditions together. Keys are passed as raw uint32 key data so they can be laid out with `NamedSharding`; on
several hosts (after `jax.distributed.initialize()`) every host builds the same keys and the global array is
assembled from them. Large sweeps run in equal chunks of at most `batch_size` episodes through one compiled
program (bounded memory; on CPU throughput peaks at a few dozen episodes, RESULTS.md section 4).

Example:
  program = make_episode(env, wm, cfg, [shifts.get("clean"), shifts.get("blur")])
  keys = episode_keys(seed=0, seeds=3, episodes=50)                 # uint32[3 * 50, 2]
  keys, conditions = with_conditions(keys, 2)                       # uint32[300, 2], int32[300]
  result = evaluate(program, params, keys, conditions)              # EpisodeResult, leading axis 300
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec as P


def episode_keys(seed, seeds, episodes):
  """Raw key data uint32[seeds * episodes, 2], seed-major: episode e of test seed s is row s * episodes + e.

  The same (seed, s, e) gives the same task and initial state, so frozen and adaptive runs are paired.
  """
  base = jax.random.key(seed)
  keys = jax.vmap(lambda s: jax.vmap(lambda e: jax.random.fold_in(jax.random.fold_in(base, s), e))(
      jnp.arange(episodes)))(jnp.arange(seeds))
  return jax.random.key_data(keys.reshape(-1))


def with_conditions(key_data, num_conditions):
  """The same episodes under each of `num_conditions` conditions (paired across conditions).

  Returns (uint32[C * E, 2], int32[C * E]): condition-major, row c * E + e is episode e under condition c.
  """
  key_data = np.asarray(key_data)
  return (np.tile(key_data, (num_conditions, 1)),
          np.repeat(np.arange(num_conditions, dtype=np.int32), key_data.shape[0]))


def make_mesh(devices=None):
  """A 1-D mesh named 'batch' over `devices` (default: all devices of all hosts)."""
  devices = np.asarray(devices if devices is not None else jax.devices())
  return jax.sharding.Mesh(devices, ("batch",), axis_types=(jax.sharding.AxisType.Auto,))


def chunk_size(episodes, batch_size, multiple):
  """Episodes per call: `episodes` split into the fewest equal chunks of at most `batch_size` (None: one
  chunk), each rounded up to a multiple of `multiple` (the device count)."""
  if batch_size is not None and batch_size < 1:
    raise ValueError(f"batch_size must be a positive number of episodes or None, got {batch_size}")
  chunks = 1 if batch_size is None else math.ceil(episodes / batch_size)
  return multiple * math.ceil(math.ceil(episodes / chunks) / multiple)


def make_evaluator(program, mesh=None, batch_size=None):
  """Returns `run(params, key_data uint32[E, 2], condition_ids int32[E] | None) -> EpisodeResult`.

  The program is jitted once and reused for every chunk and call. With `mesh`, the episode axis is sharded
  over its 'batch' axis and params are replicated; on one host, fewer episodes than devices run on the default
  device instead. Episodes are padded to equal chunks (see `chunk_size`); pad episodes are dropped.
  condition_ids default to 0 (the program's first condition).
  """
  num_conditions = len(program.conditions)

  def batched(params, key_data, condition_ids):
    return jax.vmap(lambda k, c: program.run(params, jax.random.wrap_key_data(k), condition=c))(
        key_data, condition_ids)

  single = jax.jit(batched)
  if mesh is not None:
    batch = NamedSharding(mesh, P("batch"))
    sharded = jax.jit(batched, in_shardings=(NamedSharding(mesh, P()), batch, batch), out_shardings=batch)

  def run(params, key_data, condition_ids=None):
    key_data = np.asarray(key_data)
    if key_data.ndim != 2 or key_data.shape[0] == 0:
      raise ValueError(f"key_data must be uint32[E, 2] with E >= 1, got shape {key_data.shape}")
    n = key_data.shape[0]
    condition_ids = (np.zeros(n, np.int32) if condition_ids is None
                     else np.asarray(condition_ids, np.int32))
    if condition_ids.shape != (n,) or condition_ids.min() < 0 or condition_ids.max() >= num_conditions:
      raise ValueError(f"condition_ids must be int32[{n}] in [0, {num_conditions}) (the program's conditions: "
                       f"{', '.join(c.name for c in program.conditions)}), got {condition_ids}")
    use_mesh = mesh is not None and (n >= mesh.devices.size or jax.process_count() > 1)
    chunk = chunk_size(n, batch_size, mesh.devices.size if use_mesh else 1)
    pad = (-n) % chunk
    key_data = np.concatenate([key_data, np.repeat(key_data[-1:], pad, 0)], 0)
    condition_ids = np.concatenate([condition_ids, np.repeat(condition_ids[-1:], pad, 0)], 0)
    outs = [_call(sharded, mesh, params, key_data[i:i + chunk], condition_ids[i:i + chunk]) if use_mesh
            else single(params, jnp.asarray(key_data[i:i + chunk]), jnp.asarray(condition_ids[i:i + chunk]))
            for i in range(0, n + pad, chunk)]
    out = outs[0] if len(outs) == 1 else jax.tree.map(lambda *x: np.concatenate(x, 0), *outs)
    return jax.tree.map(lambda x: x[:n], out)

  return run


def _call(fn, mesh, params, key_data, condition_ids):
  """One chunk through the sharded program: placed on one host's devices, or as global arrays on several."""
  batch, replicated = NamedSharding(mesh, P("batch")), NamedSharding(mesh, P())
  if jax.process_count() == 1:
    return fn(jax.device_put(params, replicated), jax.device_put(key_data, batch),
              jax.device_put(condition_ids, batch))

  def global_array(x, sharding):
    return jax.make_array_from_callback(np.shape(x), sharding, lambda idx: np.asarray(x)[idx])

  out = fn(jax.tree.map(lambda x: global_array(x, replicated), params), global_array(key_data, batch),
           global_array(condition_ids, batch))
  return multihost_utils.process_allgather(out, tiled=True)


def evaluate(program, params, key_data, condition_ids=None, mesh="auto", batch_size=None):
  """Runs all episodes of `key_data` (uint32[E, 2]), episode i under `program.conditions[condition_ids[i]]`
  (default: the first), and returns the stacked EpisodeResult (leading axis E).

  mesh: "auto" shards over all devices when there is more than one; None forces one device.
  batch_size: at most this many episodes per call (None: all at once).
  """
  if mesh == "auto":
    mesh = make_mesh() if len(jax.devices()) > 1 else None
  return make_evaluator(program, mesh, batch_size)(params, key_data, condition_ids)
