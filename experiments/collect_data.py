"""Collects offline data for a task into `<workdir>/data` (shards + manifest + contact sheet): the config's
`task` and `data` sections say what (task name and env kwargs; episodes, length, seed, shard size, expert
fraction).

  python experiments/collect_data.py --config=adajepa_jax/configs/pusht.py:cpu --workdir=workdirs/pusht
  python experiments/collect_data.py --config=adajepa_jax/configs/pushobj.py:cpu \
      --config.task.kwargs.shapes="('T', 'L', 'Z', '+')" --config.data.episodes=1000 --workdir=workdirs/pushobj
  python experiments/collect_data.py --config=adajepa_jax/configs/pusht.py:tiny --workdir=/tmp/pusht_tiny

Re-running with the same settings keeps the shards already written (resume). Several devices:
`--data_parallel=on` (the default on accelerators) splits each shard's episodes over them. Several hosts: run
the same command on every host with $JAX_COORDINATOR_ADDRESS, $JAX_NUM_PROCESSES and $JAX_PROCESS_ID set
(`utils.join_hosts`); process 0 writes the files.
"""
import os

from absl import flags
from ml_collections import config_flags

from adajepa_jax import utils

_CONFIG = config_flags.DEFINE_config_file("config", None, "Run config (its task and data sections).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder; data goes to <workdir>/data.", required=True)
_SHEET = flags.DEFINE_integer("sheet_episodes", 6, "Episodes (rows) in the PNG contact sheet.")
_DATA_PARALLEL = flags.DEFINE_enum(
    "data_parallel", "auto", ["auto", "on", "off"],
    "Split each shard's episodes over every device (of every host). auto: on with several accelerators, off "
    "on CPU (where it changes the data's last bits, and so the committed datasets).")
flags.mark_flag_as_required("config")


def main(argv):
  del argv
  from adajepa_jax.data import collect

  data = _CONFIG.value.data
  data_parallel = {"auto": None, "on": True, "off": False}[_DATA_PARALLEL.value]
  manifest = collect.collect_for_config(_CONFIG.value, _WORKDIR.value, sheet_episodes=_SHEET.value,
                                        data_parallel=data_parallel)
  if manifest is None:   # not process 0 of several
    return
  contact = manifest["contact_fraction"]
  print(f"wrote {manifest['collected_episodes']} episodes x {data.length} steps in {len(manifest['shards'])} "
        f"shards to {os.path.join(_WORKDIR.value, 'data')} ({manifest['seconds']:.1f} s)")
  print("episodes with contact: " + ("n/a (task reports no contact)" if contact is None
                                     else f"{100 * contact:.1f}%"))
  print(f"contact sheet: {os.path.join(_WORKDIR.value, 'contact_sheet.png')}")


if __name__ == "__main__":
  utils.join_hosts()
  utils.run(main)
