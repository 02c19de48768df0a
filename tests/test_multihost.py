"""Multi-host evaluation and data collection for real: 2 local processes (1 CPU device each, coordinator on
127.0.0.1) evaluate a tiny frozen and adaptive run together; each gathers all results, which must equal this
process's run of the same keys on its 2 host devices (the same partitioned program), bit for bit. Then they
collect a tiny dataset together, which process 0 writes: it must equal this process's 2-device collection.

The three processes compile the two programs side by side; process 1 always compiles (JAX caches a
multi-process CPU program for process 0 only): 65-120 s on 2 shared cores, 165 s with an empty cache, and the
other pytest worker runs at a third of its speed meanwhile. So it is a `slow` test (`make test-slow`); the
single-process sharded programs are checked by tests/test_mpc.py in every run."""
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import multihost_worker

TIMEOUT_S = 300   # a hung cluster (a process that never joins, a lost collective) fails instead of blocking


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_gather_the_single_process_results(tmp_path):
  import jax
  flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
           if not f.startswith("--xla_force_host_platform_device_count")]
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=" ".join(flags + ["--xla_force_host_platform_device_count=1"]),
             ADAJEPA_JAX_CACHE=jax.config.jax_compilation_cache_dir)
  worker = os.path.join(os.path.dirname(__file__), "multihost_worker.py")
  coordinator = f"127.0.0.1:{_free_port()}"
  start = time.perf_counter()
  logs = [tmp_path / f"process_{i}.log" for i in range(2)]
  files = [open(log, "w") for log in logs]
  procs = [subprocess.Popen([sys.executable, worker, str(tmp_path)], stdout=files[i], stderr=subprocess.STDOUT,
                            env=dict(env, JAX_COORDINATOR_ADDRESS=coordinator, JAX_NUM_PROCESSES="2",
                                     JAX_PROCESS_ID=str(i)))
           for i in range(2)]
  try:
    reference = multihost_worker.evaluations()   # meanwhile, here on this process's 2 host devices
    multihost_worker.collection(str(tmp_path / "reference_data"))
    for p in procs:
      p.wait(timeout=max(30.0, TIMEOUT_S - (time.perf_counter() - start)))
  finally:
    for p, f in zip(procs, files):
      if p.poll() is None:
        p.kill()
        p.wait()
      f.close()
  for i, p in enumerate(procs):
    assert p.returncode == 0, f"process {i} exited with {p.returncode}:\n{logs[i].read_text()[-5000:]}"

  for i in range(2):
    with np.load(tmp_path / f"process_{i}.npz") as gathered:
      assert sorted(gathered.files) == sorted(reference), i
      for name, value in reference.items():
        assert gathered[name].shape[0] == 2 * 3, name   # 3 episodes x 2 conditions, pads dropped
        np.testing.assert_array_equal(gathered[name], value, err_msg=f"process {i}: {name}")

  from adajepa_jax.data import storage
  written, reference_manifest = (storage.read_manifest(str(tmp_path / d)) for d in ("data", "reference_data"))
  assert written["complete"] and written["collected_episodes"] == 5
  assert len(written["shards"]) == len(reference_manifest["shards"]) == 2
  for entry in written["shards"]:
    got, want = (storage.open_shard(str(tmp_path / d / entry["file"])) for d in ("data", "reference_data"))
    for k in storage.SHARD_KEYS:
      np.testing.assert_array_equal(got[k], want[k], err_msg=f"{entry['file']}: {k}")
