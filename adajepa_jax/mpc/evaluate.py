"""Batched evaluation: `jit(vmap(episode))` with the episode axis sharded over all devices.

Every episode owns its adapted params (vmap gives each its own copy of the carry). An episode is named by its
typed key (`jax.random.key`, as `program.run` takes) and the index of its shift condition in
`program.conditions`, so one program evaluates episodes x seeds x conditions together. Keys are laid out over
the devices with `NamedSharding`; on several hosts (after `jax.distributed.initialize()`) every host builds
the same keys and params, global arrays are assembled from them, and every host receives all results.
Large sweeps run in equal chunks of at most `batch_size` episodes through one compiled program (bounded
memory; on CPU throughput peaks at a few dozen episodes, RESULTS.md section 4).

Example:
  program = make_episode(env, wm, cfg, [shifts.get("clean"), shifts.get("blur")])
  keys = episode_keys(seed=0, seeds=3, episodes=50)                 # key<fry>[3 * 50]
  keys, conditions = with_conditions(keys, 2)                       # key<fry>[300], int32[300]
  result = evaluate(program, params, keys, conditions)              # EpisodeResult, leading axis 300
"""
import math
import zlib
from typing import Any, Callable, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from adajepa_jax.mpc.episode import EpisodeProgram, EpisodeResult
from adajepa_jax.sharding import make_mesh, pad_rows, place, to_host


def episode_keys(seed: int, seeds: int, episodes: int) -> jax.Array:
  """Typed keys key<impl>[seeds * episodes], seed-major: episode e of test seed s is entry s * episodes + e.

  The same (seed, s, e) gives the same task and initial state, so frozen and adaptive runs are paired.
  """
  base = jax.random.key(seed)
  keys = jax.vmap(lambda s: jax.vmap(lambda e: jax.random.fold_in(jax.random.fold_in(base, s), e))(
      jnp.arange(episodes)))(jnp.arange(seeds))
  return keys.reshape(-1)


def with_conditions(keys: jax.Array, num_conditions: int) -> tuple[jax.Array, np.ndarray]:
  """The same episodes under each of `num_conditions` conditions (paired across conditions).

  Returns (key<impl>[C * E], int32[C * E]): condition-major, entry c * E + e is episode e under condition c.
  """
  keys = _check_keys(keys)
  return (jnp.tile(keys, num_conditions),
          np.repeat(np.arange(num_conditions, dtype=np.int32), keys.shape[0]))


def _check_keys(keys: Any) -> jax.Array:
  """Returns `keys` if they are typed PRNG keys key<impl>[E] with E >= 1; raises naming what they are."""
  if not (isinstance(keys, jax.Array) and jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key)):
    dtype = getattr(keys, "dtype", type(keys).__name__)
    raise TypeError(f"keys must be typed PRNG keys key<impl>[E] (episode_keys, jax.random.key), got "
                    f"{dtype}{list(np.shape(keys))}; raw uint32 key data converts with "
                    "jax.random.wrap_key_data")
  if keys.ndim != 1 or keys.shape[0] == 0:
    raise ValueError(f"keys must be key<impl>[E] with E >= 1 (one key per episode), got {keys.dtype}"
                     f"{list(keys.shape)}")
  return keys


def chunk_size(episodes: int, batch_size: Optional[int], multiple: int) -> int:
  """Episodes per call: `episodes` split into the fewest equal chunks of at most `batch_size` (None: one
  chunk), each rounded up to a multiple of `multiple` (the device count)."""
  if batch_size is not None and batch_size < 1:
    raise ValueError(f"batch_size must be a positive number of episodes or None, got {batch_size}")
  chunks = 1 if batch_size is None else math.ceil(episodes / batch_size)
  return multiple * math.ceil(math.ceil(episodes / chunks) / multiple)


def make_evaluator(program: EpisodeProgram, mesh: Optional[Mesh] = None, batch_size: Optional[int] = None,
                   progress: Optional[Callable[[int], Any]] = None) -> Callable[..., EpisodeResult]:
  """Returns `run(params, keys key<impl>[E], condition_ids int32[E] | None, setting_ids int32[E] | None)
  -> EpisodeResult`.

  The program is jitted once and reused for every chunk and call. With `mesh`, the episode axis is sharded
  over its 'batch' axis and params are replicated; on one host, fewer episodes than devices run on the default
  device instead. Episodes are padded to equal chunks (see `chunk_size`); pad episodes are dropped.
  condition_ids and setting_ids default to 0 (the program's first condition and adaptation setting).
  progress: called with the number of (real) episodes of each chunk once it has finished (e.g. a tqdm bar's
  `update`); the chunks then run one after the other instead of being queued.
  """
  num_conditions = len(program.conditions)

  def batched(params, keys, condition_ids, setting_ids):
    return jax.vmap(lambda k, c, g: program.run(params, k, condition=c, setting=g))(
        keys, condition_ids, setting_ids)

  single = jax.jit(batched)
  if mesh is not None:
    batch, replicated = NamedSharding(mesh, P("batch")), NamedSharding(mesh, P())
    sharded = jax.jit(batched, in_shardings=(replicated, batch, batch, batch), out_shardings=batch)

  def call_sharded(params, keys, condition_ids, setting_ids):
    """One chunk through the sharded program, its results complete on every host."""
    out = sharded(place(params, replicated), place(keys, batch), place(condition_ids, batch),
                  place(setting_ids, batch))
    return out if jax.process_count() == 1 else to_host(out, mesh)

  def ids(values, n, count, what):
    """Per-episode indices int32[n] in [0, count) (default zeros); ValueError naming the valid range."""
    values = np.zeros(n, np.int32) if values is None else np.asarray(values, np.int32)
    if values.shape != (n,) or values.min() < 0 or values.max() >= count:
      raise ValueError(f"{what}_ids must be int32[{n}] in [0, {count}) (the program's {what}s"
                       + (f": {', '.join(c.name for c in program.conditions)}" if what == "condition" else "")
                       + f"), got {values}")
    return values

  def run(params, keys, condition_ids=None, setting_ids=None):
    n = _check_keys(keys).shape[0]
    condition_ids = ids(condition_ids, n, num_conditions, "condition")
    setting_ids = ids(setting_ids, n, program.num_settings, "setting")
    use_mesh = mesh is not None and (n >= mesh.devices.size or jax.process_count() > 1)
    if use_mesh and jax.process_count() > 1:
      _check_same_on_all_processes(keys, np.stack([condition_ids, setting_ids]))
    chunk = chunk_size(n, batch_size, mesh.devices.size if use_mesh else 1)
    padded = pad_rows(n, chunk)   # pad with repeats of the last episode
    keys, condition_ids, setting_ids = keys[padded], condition_ids[padded], setting_ids[padded]
    outs = []
    for i in range(0, len(padded), chunk):
      part = (keys[i:i + chunk], condition_ids[i:i + chunk], setting_ids[i:i + chunk])
      outs.append(call_sharded(params, *part) if use_mesh
                  else single(params, part[0], jnp.asarray(part[1]), jnp.asarray(part[2])))
      if progress is not None:
        jax.block_until_ready(outs[-1])
        progress(min(chunk, n - i))
    out = outs[0] if len(outs) == 1 else jax.tree.map(lambda *x: np.concatenate(x, 0), *outs)
    return jax.tree.map(lambda x: x[:n], out)

  return run


def _check_same_on_all_processes(keys, ids):
  """Raises unless every process passes the same episodes (a fingerprint of keys and of the condition and
  setting ids, `ids`).

  Called before the program is compiled, this first collective also sets up the CPU collectives (gloo) while
  the processes are in step: on CPU a first collective fails when a process reaches it ~30 s after another
  (measured, jax 0.10.2), and compile times differ across processes (JAX writes a multi-process program's
  cache entry from process 0 only, under a key the other processes do not compute). Later collectives wait.
  """
  data = np.asarray(jax.random.key_data(keys)).tobytes() + ids.tobytes()
  multihost_utils.assert_equal(np.array([keys.shape[0], zlib.crc32(data)], np.uint32),
                               "every process must pass the same keys, condition_ids and setting_ids to evaluate")


def evaluate(program: EpisodeProgram, params: Any, keys: jax.Array, condition_ids: Optional[Any] = None,
             mesh: Union[str, Mesh, None] = "auto", batch_size: Optional[int] = None,
             setting_ids: Optional[Any] = None, progress: Optional[Callable[[int], Any]] = None
             ) -> EpisodeResult:
  """Runs the episodes of `keys` (key<impl>[E], e.g. `episode_keys`), episode i under
  `program.conditions[condition_ids[i]]` (int32[E]; default: the first) and, for a program with a grid of
  adaptation settings, with setting `setting_ids[i]` (int32[E]; default: the first), and returns the
  stacked EpisodeResult (leading axis E).

  mesh: "auto" shards over all devices when there is more than one; None forces one device.
  batch_size: at most this many episodes per call (None: all at once).
  progress: called with each finished chunk's episode count (see `make_evaluator`).
  On several hosts every host calls this with the same arguments and receives all E results.
  """
  if mesh == "auto":
    mesh = make_mesh() if len(jax.devices()) > 1 else None
  return make_evaluator(program, mesh, batch_size, progress)(params, keys, condition_ids, setting_ids)
