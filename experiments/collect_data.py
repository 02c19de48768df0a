"""Collects offline data for a task into `<workdir>/data` (shards + manifest + contact sheet): the config's
`task` and `data` sections say what (task name and env kwargs; episodes, length, seed, shard size, expert
fraction).

  python experiments/collect_data.py --config=adajepa_jax/configs/pusht.py:cpu --workdir=workdirs/pusht
  python experiments/collect_data.py --config=adajepa_jax/configs/pushobj.py:cpu \
      --config.task.kwargs.shapes="('T', 'L', 'Z', '+')" --config.data.episodes=1000 --workdir=workdirs/pushobj
  python experiments/collect_data.py --config=adajepa_jax/configs/pusht.py:tiny --workdir=/tmp/pusht_tiny

Re-running with the same settings keeps the shards already written (resume).
"""
import os

from absl import flags
from ml_collections import config_flags

from adajepa_jax import utils

_CONFIG = config_flags.DEFINE_config_file("config", None, "Run config (its task and data sections).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder; data goes to <workdir>/data.", required=True)
_SHEET = flags.DEFINE_integer("sheet_episodes", 6, "Episodes (rows) in the PNG contact sheet.")
flags.mark_flag_as_required("config")


def main(argv):
  del argv
  from tqdm import tqdm

  from adajepa_jax import envs
  from adajepa_jax.data import collect

  task, data = _CONFIG.value.task, _CONFIG.value.data
  env = envs.make(task.name, **task.kwargs)
  data_dir = os.path.join(_WORKDIR.value, "data")
  with tqdm(total=-(-data.episodes // min(data.shard_episodes, data.episodes)), desc=f"collect {task.name}",
            unit="shard") as bar:
    manifest = collect.collect_to_dir(
        env, data_dir, data.episodes, data.length, seed=data.seed, shard_episodes=data.shard_episodes,
        manifest_extra=dict(task=task.name, kwargs=task.kwargs.to_dict()),
        progress=lambda i, n: bar.update(1), expert_fraction=data.expert_fraction)
  sheet_path = collect.write_contact_sheet(data_dir, os.path.join(_WORKDIR.value, "contact_sheet.png"),
                                           _SHEET.value)
  contact = manifest["contact_fraction"]
  print(f"wrote {manifest['collected_episodes']} episodes x {data.length} steps in {len(manifest['shards'])} "
        f"shards to {data_dir} ({manifest['seconds']:.1f} s)")
  print("episodes with contact: " + ("n/a (task reports no contact)" if contact is None
                                     else f"{100 * contact:.1f}%"))
  print(f"contact sheet: {sheet_path}")


if __name__ == "__main__":
  utils.run(main)
