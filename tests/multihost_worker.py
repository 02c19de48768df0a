"""One process of tests/test_multihost.py's multi-host evaluation (also importable: `evaluations()`).

  JAX_COORDINATOR_ADDRESS=127.0.0.1:<port> JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=<i> \
  XLA_FLAGS=--xla_force_host_platform_device_count=1 JAX_PLATFORMS=cpu python tests/multihost_worker.py <dir>

joins the cluster as experiments/evaluate.py does (`utils.join_hosts`), evaluates its share of `evaluations()`
and writes the gathered results to <dir>/process_<i>.npz; then collects its share of `collection(<dir>/data)`
(process 0 writes the shards).
"""
import os
import sys
import time

import numpy as np

CONDITIONS = ("clean", "low_mass")
MODES = (("frozen", None), ("predlast+enclast", 4))   # (mode, batch_size): adaptive in 2 chunks, 2 pads


def evaluations():
  """Frozen and adaptive tiny-PointMaze evaluations of 3 episodes x 2 conditions from random-init params
  (a fixed key), on all devices of all processes. Returns {'<mode>/<leaf path>': np.ndarray[6, ...]}."""
  import jax
  from adajepa_jax import envs
  from adajepa_jax.configs import pointmaze
  from adajepa_jax.eval import build
  from adajepa_jax.mpc import episode_keys, evaluate, make_episode, with_conditions

  cfg = pointmaze.get_config("tiny")
  env = envs.make(cfg.task.name, **cfg.task.kwargs)
  wm = build.world_model_for(cfg, env)
  params = jax.jit(wm.init)(jax.random.key(0))
  keys, condition_ids = with_conditions(episode_keys(0, 1, 3), len(CONDITIONS))
  out = {}
  for mode, batch_size in MODES:
    program = make_episode(env, wm, build.mode_config(cfg, mode), CONDITIONS, record_frames=False)
    result = evaluate(program, params, keys, condition_ids, batch_size=batch_size)
    for path, leaf in jax.tree_util.tree_flatten_with_path(result)[0]:
      out[f"{mode}/{jax.tree_util.keystr(path)}"] = np.asarray(leaf)
  return out


def collection(data_dir):
  """Collects 5 tiny-PointMaze episodes x 6 steps in shards of 4 (the second padded) into `data_dir`, each
  shard's episodes split over all devices of all processes. Returns the manifest (None off process 0)."""
  from adajepa_jax import envs, sharding
  from adajepa_jax.configs import pointmaze
  from adajepa_jax.data import collect

  cfg = pointmaze.get_config("tiny")
  env = envs.make(cfg.task.name, **cfg.task.kwargs)
  return collect.collect_to_dir(env, data_dir, episodes=5, length=6, seed=1, shard_episodes=4,
                                mesh=sharding.make_mesh())


def main(out_dir):
  start = time.perf_counter()
  from adajepa_jax import utils
  utils.join_hosts()   # before anything initialises JAX, as the apps' __main__ do
  import jax
  utils.setup_runtime()   # the cache dir is $ADAJEPA_JAX_CACHE
  assert jax.process_count() == int(os.environ["JAX_NUM_PROCESSES"]) and jax.local_device_count() == 1, (
      jax.process_count(), jax.local_devices())
  out = evaluations()
  np.savez(os.path.join(out_dir, f"process_{jax.process_index()}.npz"), **out)
  manifest = collection(os.path.join(out_dir, "data"))
  assert (manifest is None) == (jax.process_index() != 0), manifest
  print(f"process {jax.process_index()}/{jax.process_count()}: {len(jax.devices())} devices, "
        f"{time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
  main(sys.argv[1])
