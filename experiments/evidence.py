"""Writes the evidence (validation one-step loss vs copy-last, latent std, probe R^2) of any stored checkpoint,
on the same validation batches and probe frames as training uses, so that a table can report the evidence of
the very checkpoint it evaluates:

  python experiments/evidence.py --config=adajepa_jax/configs/stored.py:workdirs/pusht/checkpoints/latest

`train_world_model.py` already writes `<workdir>/evidence.json` for the checkpoint evaluation loads (best, else
latest); this app writes `<checkpoint folder>/evidence.json` for another one. The data come from
`train.data_dir`, else `<training workdir>/data`.
"""
import json
import os

from ml_collections import config_flags

from adajepa_jax import utils

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "adajepa_jax/configs/stored.py:<training workdir or checkpoint folder>.")


def main(argv):
  del argv
  import jax

  from adajepa_jax import models
  from adajepa_jax.errors import UsageError
  from adajepa_jax.training import checkpoint, train

  config = _CONFIG.value
  if config is None or "checkpoint" not in config:
    raise UsageError("--config must be a stored config: adajepa_jax/configs/stored.py:<training workdir or "
                     "checkpoint folder>")
  path = config.checkpoint.workdir
  data_dir = config.train.data_dir or os.path.join(checkpoint.training_workdir(path), "data")
  train_ds, val_ds = train.make_datasets(config, data_dir)
  val_batches = train.validation_batches(val_ds, config.train)
  wm = models.make_world_model(config.model, config.checkpoint.obs_spec.to_dict())
  eval_step = jax.jit(train.make_eval_step(wm, config.train))
  ev = train.checkpoint_evidence(path, config, wm, eval_step, val_batches,
                                 train.probe_frames(train_ds, val_ds, config.train))
  print(json.dumps(ev))
  print(f"wrote {os.path.join(path, 'evidence.json')}")


if __name__ == "__main__":
  utils.run(main)
