"""Device placement, in one place: a 1-D 'batch' mesh over every device of every process, and the two moves
that data parallelism needs, host rows onto the mesh and sharded results back to every host.

Evaluation shards episodes (`mpc.evaluate`), data collection shards episodes (`data.collect`), training shards
each batch (`training.train.DataParallel`). On several hosts (after `utils.join_hosts`) every process passes
the same host arrays and receives the same results.

Example:
  mesh = make_mesh()                                   # Mesh('batch': every device)
  rows = NamedSharding(mesh, P("batch"))
  out = jax.jit(f, in_shardings=rows, out_shardings=rows)(place(x, rows))
  out = to_host(out, mesh)                             # numpy on every process
"""
import functools
from typing import Any, Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def make_mesh(devices: Optional[Any] = None) -> Mesh:
  """A 1-D mesh named 'batch' over `devices` (default: all devices of all processes)."""
  devices = np.asarray(devices if devices is not None else jax.devices())
  return Mesh(devices, ("batch",), axis_types=(jax.sharding.AxisType.Auto,))


def data_parallel_default() -> bool:
  """Whether training and data collection shard over devices by default: on accelerators with more than one
  device, not on CPU. CPU host devices are one per core (`utils.setup_runtime`); there sharding changes how
  XLA vectorises and sums, so the last bits of the data and the trained models, without a measured gain.
  (Evaluation always shards: its episodes are independent and its results were measured sharded.)"""
  return jax.default_backend() != "cpu" and jax.device_count() > 1


def place(tree: Any, sharding: NamedSharding) -> Any:
  """Host arrays (the same full arrays on every process) as global arrays laid out by `sharding`."""
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)
  return jax.tree.map(
      lambda x: jax.make_array_from_callback(np.shape(x), sharding, lambda idx, x=x: x[idx]),
      tree)


def to_host(tree: Any, mesh: Mesh) -> Any:
  """Global arrays on `mesh` -> numpy arrays, complete on every process."""
  if jax.process_count() == 1:
    return jax.device_get(tree)
  return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), _replicator(mesh)(tree))


@functools.lru_cache(maxsize=None)
def _replicator(mesh: Mesh):
  """The identity, jitted once per mesh, with every output replicated (gathered to every process)."""
  return jax.jit(lambda tree: tree, out_shardings=NamedSharding(mesh, P()))


def pad_rows(n: int, multiple: int) -> np.ndarray:
  """int[n + pad]: row indices 0..n-1, then repeats of the last row up to a multiple of `multiple`."""
  return np.minimum(np.arange(n + (-n) % multiple), n - 1)
