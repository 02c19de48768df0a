"""Batched evaluation: `jit(vmap(episode))` with the episode axis sharded over all devices.

Every episode owns its adapted params (vmap gives each its own copy of the carry). Keys are passed as raw
uint32 key data so they can be laid out with `NamedSharding`; on several hosts (after
`jax.distributed.initialize()`) every host builds the same keys and the global array is assembled from them.

Example:
  program = make_episode(env, wm, cfg)
  keys = episode_keys(seed=0, seeds=3, episodes=50)                 # uint32[3 * 50, 2]
  result = evaluate(program, params, keys)                          # EpisodeResult, leading axis 150
"""
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


def make_mesh(devices=None):
  """A 1-D mesh named 'batch' over `devices` (default: all devices of all hosts)."""
  devices = np.asarray(devices if devices is not None else jax.devices())
  return jax.sharding.Mesh(devices, ("batch",), axis_types=(jax.sharding.AxisType.Auto,))


def make_evaluator(program, mesh=None):
  """Returns `run(params, key_data uint32[E, 2]) -> EpisodeResult` (jitted once, reused across calls).

  With `mesh`, the episode axis is sharded over its 'batch' axis and params are replicated; E is padded to a
  multiple of the mesh size (pad episodes are dropped from the result); on one host, fewer episodes than
  devices run on the default device instead. mesh=None runs on the default device.
  """
  def batched(params, key_data):
    return jax.vmap(lambda k: program.run(params, jax.random.wrap_key_data(k)))(key_data)

  single = jax.jit(batched)

  def run_single(params, key_data):
    return single(params, jnp.asarray(key_data))

  if mesh is None:
    return run_single

  batch = NamedSharding(mesh, P("batch"))
  replicated = NamedSharding(mesh, P())
  jitted = jax.jit(batched, in_shardings=(replicated, batch), out_shardings=batch)
  size = mesh.devices.size

  def run(params, key_data):
    key_data = np.asarray(key_data)
    n = key_data.shape[0]
    if n < size and jax.process_count() == 1:
      return run_single(params, key_data)
    pad = (-n) % size
    if pad:
      key_data = np.concatenate([key_data, np.repeat(key_data[-1:], pad, 0)], 0)
    if jax.process_count() > 1:
      global_keys = jax.make_array_from_callback(key_data.shape, batch, lambda idx: key_data[idx])
      params = jax.tree.map(
          lambda x: jax.make_array_from_callback(np.shape(x), replicated, lambda idx: np.asarray(x)[idx]),
          params)
      out = multihost_utils.process_allgather(jitted(params, global_keys), tiled=True)
    else:
      out = jitted(jax.device_put(params, replicated), jax.device_put(key_data, batch))
    return jax.tree.map(lambda x: x[:n], out)

  return run


def evaluate(program, params, key_data, mesh="auto"):
  """Runs all episodes of `key_data` (uint32[E, 2]) and returns the stacked EpisodeResult (leading axis E).

  mesh: "auto" shards over all devices when there is more than one; None forces one device.
  """
  if mesh == "auto":
    mesh = make_mesh() if len(jax.devices()) > 1 else None
  return make_evaluator(program, mesh)(params, key_data)
