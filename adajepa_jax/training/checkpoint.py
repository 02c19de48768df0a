"""Checkpoints (the project's only orbax import).

Layout of a training workdir: `<workdir>/checkpoints/latest/<step>/` (resume) and
`<workdir>/checkpoints/best/<step>/` (lowest validation loss). Each step holds four items:
  params  the world-model param tree            train   {'step', 'opt_state'}
  config  the resolved run config (JSON)         meta    obs_spec, dataset fingerprint, step, val loss, ...

Example:
  wm, params, config = checkpoint.load("workdirs/pusht")   # best if present, else latest
  config, meta = checkpoint.load_config("workdirs/pusht")           # the config alone (configs/stored.py)
"""
import json
import os
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import jax
import ml_collections
import orbax.checkpoint as ocp

from adajepa_jax.errors import UsageError

if TYPE_CHECKING:   # imported locally by `load` (keeps orbax-only callers light)
  from adajepa_jax.models import world_model

ITEMS = ("params", "train", "config", "meta")
#: Config sections that must match for params to be reused.
MODEL_SECTIONS = ("model",)
#: A config as a ConfigDict or a plain (JSON-like) dict.
_ConfigLike = Union[ml_collections.ConfigDict, dict[str, Any]]


def _jsonable(config):
  """ConfigDict / dict -> a plain JSON-compatible dict (tuples become lists)."""
  d = config.to_dict() if isinstance(config, ml_collections.ConfigDict) else dict(config)
  return json.loads(json.dumps(d, default=str))


def config_diff(a: _ConfigLike, b: _ConfigLike, sections: Sequence[str] = MODEL_SECTIONS) -> list[str]:
  """Lists 'section.key: a != b' for every differing key of the given sections of two configs."""
  a, b = _jsonable(a), _jsonable(b)
  out = []

  def walk(x: Any, y: Any, prefix: str) -> None:
    if isinstance(x, dict) and isinstance(y, dict):
      for k in sorted(set(x) | set(y)):
        walk(x.get(k, "<missing>"), y.get(k, "<missing>"), f"{prefix}.{k}" if prefix else k)
    elif x != y:
      out.append(f"{prefix}: {x!r} != {y!r}")

  for s in sections:
    walk(a.get(s, {}), b.get(s, {}), s)
  return out


def check_config(stored: _ConfigLike, expected: _ConfigLike, where: str,
                 sections: Sequence[str] = MODEL_SECTIONS) -> None:
  """Raises UsageError naming every differing key if `stored` and `expected` differ in `sections`."""
  diff = config_diff(stored, expected, sections)
  if diff:
    raise UsageError(f"Checkpoint at {where} was written with a different config "
                     f"(stored != given): {'; '.join(diff)}")


def make_manager(directory: str, max_to_keep: int = 2) -> ocp.CheckpointManager:
  """A synchronous `ocp.CheckpointManager` with the four items of this module."""
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                         enable_async_checkpointing=False)
  return ocp.CheckpointManager(os.path.abspath(directory), options=options, item_names=ITEMS)


def save(manager: ocp.CheckpointManager, step: int, params: Any, opt_state: Any, config: _ConfigLike,
         meta: dict[str, Any]) -> None:
  """Saves one step (params, optimiser state, config, meta), replacing that step if it exists (a resumed
  run re-reaching it), and waits until it is on disk."""
  if int(step) in manager.all_steps():
    manager.delete(int(step))
  manager.save(int(step), args=ocp.args.Composite(
      params=ocp.args.StandardSave(params),
      train=ocp.args.StandardSave({"step": step, "opt_state": opt_state}),
      config=ocp.args.JsonSave(_jsonable(config)),
      meta=ocp.args.JsonSave(json.loads(json.dumps(meta, default=str)))))
  manager.wait_until_finished()


def _abstract(tree):
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def _tuples(x):
  """JSON lists back to the tuples the configs use (recursively)."""
  if isinstance(x, dict):
    return {k: _tuples(v) for k, v in x.items()}
  return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


# Config fields removed from `configs/base.py` that older checkpoints still store; dropped when restoring so
# those checkpoints resume and evaluate.
REMOVED_KEYS = ("model.lora_rank",)


def restore_config(manager: ocp.CheckpointManager,
                   step: Optional[int] = None) -> tuple[ml_collections.ConfigDict, dict[str, Any]]:
  """(config ConfigDict, meta dict) of a step (default: latest); JSON lists come back as tuples."""
  step = manager.latest_step() if step is None else step
  r = manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore(),
                                                    meta=ocp.args.JsonRestore()))
  config = _tuples(r["config"])
  for key in REMOVED_KEYS:   # fields older code stored that no longer exist (never read)
    section, _, leaf = key.partition(".")
    config.get(section, {}).pop(leaf, None)
  return ml_collections.ConfigDict(config), r["meta"]


def restore(manager: ocp.CheckpointManager, params_like: Any, opt_state_like: Any,
            step: Optional[int] = None) -> tuple[Any, Any, int]:
  """Restores (params, opt_state, step) against the structure of the given example trees.

  Restoring against an abstract tree keeps optax's state types (named tuples) intact.
  """
  step = manager.latest_step() if step is None else step
  r = manager.restore(step, args=ocp.args.Composite(
      params=ocp.args.StandardRestore(_abstract(params_like)),
      train=ocp.args.StandardRestore(_abstract({"step": 0, "opt_state": opt_state_like}))))
  return r["params"], r["train"]["opt_state"], r["train"]["step"]


def _find_manager_dir(path):
  """A CheckpointManager directory from a workdir, a checkpoints/ folder or a manager folder."""
  for cand in (os.path.join(path, "checkpoints", "best"), os.path.join(path, "checkpoints", "latest"),
               os.path.join(path, "best"), os.path.join(path, "latest"), path):
    if os.path.isdir(cand) and any(e.isdigit() for e in os.listdir(cand)):
      return cand
  raise UsageError(f"No checkpoint found under {path!r} (looked for checkpoints/best, checkpoints/latest "
                   "and numbered step folders)")


def training_workdir(path: str) -> str:
  """The training workdir that `path` (the workdir itself or one of its `checkpoints/<name>` folders) belongs to."""
  path = os.path.normpath(path)
  parent = os.path.dirname(path)
  return os.path.dirname(parent) if os.path.basename(parent) == "checkpoints" else path


def run_label(path: str) -> str:
  """A short name for the checkpoint at `path`: the workdir's name, plus `@<folder>` (e.g. `pusht@latest`)
  when `path` names one of its checkpoint folders."""
  path = os.path.normpath(path)
  workdir = training_workdir(path)
  name = os.path.basename(workdir)
  return name if workdir == path else f"{name}@{os.path.basename(path)}"


def load_config(path: str, step: Optional[int] = None) -> tuple[ml_collections.ConfigDict, dict[str, Any]]:
  """The config a checkpoint was trained with, without its params.

  Args:
    path: a training workdir (checkpoints/best, else checkpoints/latest), or a manager directory.
    step: optional step (default: the latest in the chosen directory).

  Returns:
    (config, meta): the stored ConfigDict and the stored meta (obs_spec, dataset fingerprint, step, ...).
  """
  manager = make_manager(_find_manager_dir(path))
  try:
    return restore_config(manager, step)
  finally:
    manager.close()


def load(path: Optional[str], config: Optional[ml_collections.ConfigDict] = None, step: Optional[int] = None
         ) -> tuple["world_model.WorldModel", Any, ml_collections.ConfigDict]:
  """The one way to load a trained model: its `WorldModel`, params and the config it was trained with.

  Args:
    path: a training workdir (uses checkpoints/best, else checkpoints/latest), or a manager directory.
    config: optional config to check against (a different `model` section raises UsageError). A stored config
      (`configs/stored.get_config`) names its checkpoint (`config.checkpoint`): with `path=None` that one is
      loaded, at its step.
    step: optional step (default: the latest in the chosen directory, or the stored config's step).

  Returns:
    (world_model, params, config): the `WorldModel` (built from the stored model section and obs_spec), the
    param tree (jax arrays) and the stored ConfigDict, with the stored meta (obs_spec, dataset fingerprint,
    metrics) at `config.checkpoint_meta`.
  """
  from adajepa_jax.models import world_model  # local: keeps orbax-only callers light

  if path is None:
    if config is None or "checkpoint" not in config:
      raise UsageError("This needs a trained model's stored config: "
                       "--config=adajepa_jax/configs/stored.py:<training workdir>")
    path, step = config.checkpoint.workdir, config.checkpoint.step if step is None else step
  directory = _find_manager_dir(path)
  manager = make_manager(directory)
  try:
    stored, meta = restore_config(manager, step)
    if config is not None:
      check_config(stored, config, directory)
    wm = world_model.make_world_model(stored.model, meta["obs_spec"])
    # Restored onto this process's device (orbax would use the saving process's, absent on other hosts).
    local = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=local),
                            jax.eval_shape(wm.init, jax.random.key(0)))
    step = manager.latest_step() if step is None else step
    r = manager.restore(step, args=ocp.args.Composite(params=ocp.args.StandardRestore(abstract)))
  finally:
    manager.close()
  stored.checkpoint_meta = meta
  return wm, r["params"], stored
