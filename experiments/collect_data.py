"""Collects offline exploration data for a task into `<workdir>/data` (shards + manifest + contact sheet).

  python experiments/collect_data.py --task=pusht --episodes=1000 --length=100 --workdir=workdirs/pusht
  python experiments/collect_data.py --task=pushobj --shapes=T,L,Z,+ --workdir=workdirs/pushobj
  python experiments/collect_data.py --config=adajepa_jax/configs/pusht.py:tiny --workdir=/tmp/pusht_tiny

With `--config`, its `task` and `data` sections give the defaults; flags given explicitly override them.
Re-running with the same settings keeps the shards already written (resume).
"""
import os

from absl import app
from absl import flags
from ml_collections import config_flags

from adajepa_jax import utils

_CONFIG = config_flags.DEFINE_config_file("config", None, "Optional run config (task and data sections).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder; data goes to <workdir>/data.", required=True)
_TASK = flags.DEFINE_string("task", "pusht", "Registered task name (adajepa_jax.envs.names()).")
_SHAPES = flags.DEFINE_list("shapes", None, "Shape names for pushobj (default: the task's own set).")
_EPISODES = flags.DEFINE_integer("episodes", 1000, "Number of episodes.")
_LENGTH = flags.DEFINE_integer("length", 100, "Env steps per episode.")
_SEED = flags.DEFINE_integer("seed", 0, "Data seed.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 64, "Rendered image side in pixels.")
_SHARD = flags.DEFINE_integer("shard_episodes", 250, "Episodes per shard (one shard in memory at a time).")
_SHEET = flags.DEFINE_integer("sheet_episodes", 6, "Episodes (rows) in the PNG contact sheet.")
_EXPERT = flags.DEFINE_float("expert_fraction", None, "Fraction of expert-policy episodes (default: the "
                             "config's data.expert_fraction; without --config 0.5 for push tasks, else 0).")


def _settings():
  """Resolves (task, env kwargs, episodes, length, seed, shard_episodes, expert_fraction) from --config and
  explicit flags."""
  cfg = _CONFIG.value
  task, kwargs = _TASK.value, {"image_size": _IMAGE_SIZE.value}
  episodes, length, seed, shard = _EPISODES.value, _LENGTH.value, _SEED.value, _SHARD.value
  expert = _EXPERT.value if _EXPERT.value is not None else (0.5 if task.startswith("push") else 0.0)
  if cfg is not None:
    task = cfg.task.name if not flags.FLAGS["task"].present else task
    kwargs = dict(cfg.task.kwargs.to_dict(), **({"image_size": _IMAGE_SIZE.value}
                                                 if flags.FLAGS["image_size"].present else {}))
    pick = lambda name, value, default: value if flags.FLAGS[name].present else default
    episodes = pick("episodes", episodes, cfg.data.episodes)
    length = pick("length", length, cfg.data.length)
    seed = pick("seed", seed, cfg.data.seed)
    shard = pick("shard_episodes", shard, cfg.data.shard_episodes)
    expert = _EXPERT.value if _EXPERT.value is not None else cfg.data.expert_fraction
  if _SHAPES.value:
    kwargs["shapes"] = tuple(_SHAPES.value)
  return task, kwargs, episodes, length, seed, shard, expert


def main(argv):
  del argv
  utils.setup_runtime()
  from tqdm import tqdm

  from adajepa_jax import envs
  from adajepa_jax.data import collect

  task, kwargs, episodes, length, seed, shard, expert = _settings()
  env = envs.make(task, **kwargs)
  data_dir = os.path.join(_WORKDIR.value, "data")
  with tqdm(total=-(-episodes // min(shard, episodes)), desc=f"collect {task}", unit="shard") as bar:
    manifest = collect.collect_to_dir(
        env, data_dir, episodes, length, seed=seed, shard_episodes=shard,
        manifest_extra=dict(task=task, kwargs={k: list(v) if isinstance(v, tuple) else v
                                               for k, v in kwargs.items()}),
        progress=lambda i, n: bar.update(1), expert_fraction=expert)
  sheet_path = collect.write_contact_sheet(data_dir, os.path.join(_WORKDIR.value, "contact_sheet.png"),
                                           _SHEET.value)
  contact = manifest["contact_fraction"]
  print(f"wrote {manifest['collected_episodes']} episodes x {length} steps in {len(manifest['shards'])} "
        f"shards to {data_dir} ({manifest['seconds']:.1f} s)")
  print("episodes with contact: " + ("n/a (task reports no contact)" if contact is None
                                     else f"{100 * contact:.1f}%"))
  print(f"contact sheet: {sheet_path}")


if __name__ == "__main__":
  app.run(main)
