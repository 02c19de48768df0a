"""Pretrains a JEPA world model on offline data and prints the evidence that it is good enough to plan with.

  python experiments/collect_data.py --config=adajepa_jax/configs/pusht.py:cpu --workdir=workdirs/pusht
  python experiments/train_world_model.py --config=adajepa_jax/configs/pusht.py:cpu --workdir=workdirs/pusht

Reads `<workdir>/data` (or `--config.train.data_dir`), writes config.json, metrics.csv, tb/,
checkpoints/{latest,best} and evidence.json under the workdir. Re-running resumes from checkpoints/latest,
with any device count.

Several devices: `--data_parallel=on` (the default on accelerators) shards each batch over them. Several hosts:
the same command on each, with $JAX_COORDINATOR_ADDRESS, $JAX_NUM_PROCESSES and $JAX_PROCESS_ID set
(`utils.join_hosts`); the workdir must be on a filesystem they share (orbax writes one checkpoint).
"""
import json
import logging

from absl import flags
from ml_collections import config_flags

from adajepa_jax import utils

_CONFIG = config_flags.DEFINE_config_file("config", "adajepa_jax/configs/pusht.py:cpu", "Run config.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder (data under <workdir>/data by default).",
                               required=True)
_DATA_PARALLEL = flags.DEFINE_enum(
    "data_parallel", "auto", ["auto", "on", "off"],
    "Shard each batch over every device, params replicated. auto: on with several accelerators, off on CPU.")


class _QuietOrbax(logging.Filter):
  """Drops orbax's per-save INFO lines (hundreds per run); its warnings and errors still show."""

  def filter(self, record):
    return record.levelno >= logging.WARNING or "/orbax/" not in record.pathname


def main(argv):
  del argv
  for handler in logging.getLogger().handlers + logging.getLogger("absl").handlers:
    handler.addFilter(_QuietOrbax())
  from adajepa_jax.training import train  # after the runtime setup

  data_parallel = {"auto": None, "on": True, "off": False}[_DATA_PARALLEL.value]
  summary = train.train_and_evaluate(_CONFIG.value, _WORKDIR.value, data_parallel=data_parallel)
  ev = summary["evidence"]
  if ev is None:
    print(f"stopped at step {summary['step']}")
    return
  print(f"validation one-step loss {ev['val_pred_loss']:.5f} vs copy-last baseline {ev['val_copy_loss']:.5f} "
        f"(ratio {ev['pred_over_copy']:.3f})")
  print(f"visual latent per-dim std: min {ev['z_std_min']:.4f}, mean {ev['z_std_mean']:.4f}")
  if "probe" in ev:
    p = ev["probe"]
    print(f"linear probe R^2 (visual latent -> state, {p['frames']} frames, held-out episodes): mean "
          f"{p['r2_mean']:.3f}; " + ", ".join(f"{k} {v:.3f}" for k, v in p["r2"].items()))
  print(json.dumps({k: v for k, v in ev.items() if k != "probe"}))


if __name__ == "__main__":
  utils.join_hosts()
  utils.run(main)
