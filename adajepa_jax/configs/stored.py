"""The config a training workdir's checkpoint was trained with (best, else latest), as stored, so that evaluation
runs the model with the settings it was trained with unless a flag says otherwise:

  python experiments/evaluate.py --config=adajepa_jax/configs/stored.py:workdirs/pusht \
      --config.plan.planner=gd --config.eval.seed=1 --workdir=workdirs/pusht/eval_gd

`config.checkpoint` ({workdir, step, obs_spec}) names the checkpoint and the observations it was trained on
(`eval.build.world_model_for` refuses an env that gives others); the apps load it with
`training.checkpoint.load(None, config=config)` (this module is data: it loads no params).
A stored config written by older code that lacks a key of today's `base_config()` in a section that shaped the
model (task, data, model, train) is refused (UsageError listing the keys): re-train it, or evaluate from Python
with the missing keys added. A key missing from a test-time section (plan, adapt, eval: options added after
the model was trained) takes today's default, which is the behaviour the older code had.
"""
from typing import Optional

import ml_collections

from adajepa_jax.configs import base
from adajepa_jax.errors import UsageError

TEST_TIME_SECTIONS = ("plan", "adapt", "eval")   # do not shape the trained model


def _leaves(c, prefix=()):
  """(path tuple, parent ConfigDict, key) of every field (task.kwargs counts as one field)."""
  for k in c.keys():
    if isinstance(c[k], ml_collections.ConfigDict) and k != "kwargs":
      yield from _leaves(c[k], prefix + (k,))
    else:
      yield prefix + (k,), c, k


def _node(c, path):
  for p in path:
    if p not in c:
      return None
    c = c[p]
  return c


def get_config(workdir: Optional[str] = None) -> ml_collections.ConfigDict:
  if not workdir:
    raise UsageError("stored.py needs a training workdir: --config=adajepa_jax/configs/stored.py:<workdir>")
  from adajepa_jax.training import checkpoint   # orbax: only when a stored config is asked for
  config, meta = checkpoint.load_config(workdir)
  missing = []
  for path, parent, key in _leaves(base.base_config()):
    node = _node(config, path[:-1])
    if node is None or key not in node:
      if node is not None and path[0] in TEST_TIME_SECTIONS:
        node[key] = parent[key]
        continue
      missing.append(".".join(path))
    elif node[key] is None and parent.get_ref(key).get_type() is not type(None):
      node[key] = ml_collections.config_dict.placeholder(parent.get_ref(key).get_type())   # adapt.lr_*
  if missing:
    raise UsageError(f"The config stored in {workdir!r} (step {meta['step']}) was written by older code and "
                     f"lacks {', '.join(missing)}; re-train it with this code")
  config.checkpoint = ml_collections.ConfigDict(
      {"workdir": workdir, "step": int(meta["step"]), "obs_spec": dict(meta["obs_spec"])})
  return config
