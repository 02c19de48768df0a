"""One test-time adaptation step: a masked optimiser step (Adam, the paper's; or plain SGD) on the pretraining
loss over the online buffer.

The freezing contract: `trainable, frozen = partition(params, labels)` splits the params by label, gradients
and updates touch `trainable` only, and `combine(trainable, frozen)` puts the untouched frozen leaves back,
so they come out bit-identical (and, under vmap over episodes, unbatched: shared weights).
"""
from typing import Any, Mapping, Optional, Sequence, Union

import chex
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import struct

from adajepa_jax.adaptation import buffer as buffer_lib
from adajepa_jax.adaptation import spec as spec_lib
from adajepa_jax.errors import UsageError
from adajepa_jax.models.world_model import Batch, LossFn

FROZEN = spec_lib.FROZEN
Labels = spec_lib.Labels


# Adaptation optimisers (`adapt.optimizer`). "adam": the paper's; with fresh moments every replan its first step
# moves each weight by about its learning rate whatever the gradient's size. "sgd": plain gradient descent, a step
# proportional to the gradient (its useful rates are far larger than Adam's: see RESULTS section 11).
OPTIMIZERS = ("adam", "sgd")


def check_optimizer(name: str) -> None:
  """Raises UsageError for an adaptation optimiser not in OPTIMIZERS."""
  if name not in OPTIMIZERS:
    raise UsageError(f"Unknown adaptation optimizer {name!r}; valid optimizers: {', '.join(OPTIMIZERS)}")


def make_adapt_optimizer(labels: Labels, lr_predictor: float, lr_encoder: float,
                         optimizer: str = "adam") -> optax.GradientTransformation:
  """Per-group Adam (or SGD); frozen leaves get zero updates.

  Args:
    labels: pytree of 'predictor' / 'encoder' / 'frozen' strings (from `spec.resolve`).
    lr_predictor: learning rate of 'predictor' leaves (paper, Adam: 5e-4); a float or a traced f32[].
    lr_encoder: learning rate of 'encoder' leaves (paper, Adam: 1e-5).
    optimizer: one of OPTIMIZERS.

  Returns:
    optax.GradientTransformation: `optax.multi_transform` over the three labels.
  """
  check_optimizer(optimizer)
  make = {"adam": optax.adam, "sgd": optax.sgd}[optimizer]
  return optax.multi_transform(
      {spec_lib.PREDICTOR: make(lr_predictor), spec_lib.ENCODER: make(lr_encoder),
       FROZEN: optax.set_to_zero()}, labels)


def learning_rates(cfg: ml_collections.ConfigDict) -> tuple[float, float]:
  """(lr_predictor, lr_encoder) of test-time adaptation: `cfg.adapt.lr_*`, where None (the default) means
  the training rate `cfg.train.lr_*`, as the paper adapts at its training learning rates."""
  return tuple(float(cfg.train[k] if cfg.adapt[k] is None else cfg.adapt[k])
               for k in ("lr_predictor", "lr_encoder"))


@struct.dataclass
class AdaptSetting:
  """The adaptation settings an episode may carry as data (traced), so that one compiled program runs a grid
  of them (`mpc.make_episode(..., settings=...)`): learning rates f32[] and the number of gradient steps
  i32[] per replan (at most the program's static `max_steps`; the steps beyond are masked out); optionally
  the adapted layers as `mask`, a tree with the params' structure of f32[] (1: adapted, 0: kept), within the
  union of the grid's specs; and optionally the buffer's policy and weighting as `buffer`, a
  `buffer.BufferRule` (within the grid's largest buffer)."""
  lr_predictor: jax.Array
  lr_encoder: jax.Array
  steps: jax.Array
  mask: Optional[Any] = None
  buffer: Optional[buffer_lib.BufferRule] = None


BUFFER_KEYS = ("buffer", "buffer_size", "buffer_weighting")   # settings keys of the buffer (`adapt` config names)
SETTING_KEYS = ("lr_predictor", "lr_encoder", "steps", "spec") + BUFFER_KEYS


def setting_of(cfg: ml_collections.ConfigDict, **changes: Any) -> dict[str, Union[float, int, str]]:
  """The config's adaptation setting {lr_predictor, lr_encoder, steps} (`learning_rates`, `adapt.steps`),
  with `changes` applied, e.g. `setting_of(cfg, steps=4)`; `spec=...` also sets the adapted layers, and any
  of `buffer=`, `buffer_size=`, `buffer_weighting=` the buffer (the others then from `cfg.adapt`)."""
  lr_p, lr_e = learning_rates(cfg)
  out: dict[str, Any] = {"lr_predictor": lr_p, "lr_encoder": lr_e, "steps": int(cfg.adapt.steps)}
  unknown = set(changes) - set(SETTING_KEYS)
  if unknown:
    raise ValueError(f"unknown adaptation setting(s) {sorted(unknown)}; settings are {list(SETTING_KEYS)}")
  if "spec" in changes:
    spec_lib.parse(changes["spec"])
  if set(changes) & set(BUFFER_KEYS):
    out.update({k: cfg.adapt[k] for k in BUFFER_KEYS})
  out.update(changes)
  if int(out["steps"]) < 1:
    raise ValueError(f"steps={out['steps']!r} must be >= 1")
  if "buffer" in out:
    buffer_lib.check_buffer(out["buffer"], out["buffer_weighting"])
    if int(out["buffer_size"]) < 1:
      raise ValueError(f"buffer_size={out['buffer_size']!r} must be >= 1")
  return out


def union_spec(settings: Sequence[Mapping[str, Any]]) -> Optional[str]:
  """The spec adapting every layer any setting adapts ('+'-joined atoms), or None when no setting names a
  spec; a grid must name a spec in every setting or in none."""
  specs = [st.get("spec") for st in settings]
  if all(s is None for s in specs):
    return None
  if any(s is None for s in specs):
    raise ValueError("settings: name a spec in every setting or in none (the config's spec applies then)")
  return "+".join(dict.fromkeys(a for s in specs for a in spec_lib.parse(s)))


def buffer_slots(settings: Sequence[Mapping[str, Any]], replans: int) -> Optional[int]:
  """The slots of a buffer serving every setting's buffer (the largest `buffer_size` of their policies), or
  None when no setting names a buffer; a grid must name one in every setting or in none."""
  named = ["buffer" in st for st in settings]
  if not any(named):
    return None
  if not all(named):
    raise ValueError("settings: name a buffer in every setting or in none (the config's buffer applies then)")
  return max(buffer_lib.buffer_size(st["buffer"], int(st["buffer_size"]), replans) for st in settings)


def settings_table(settings: Sequence[Mapping[str, Any]], params: Optional[optax.Params] = None,
                   replans: Optional[int] = None) -> AdaptSetting:
  """Stacks settings dicts (`setting_of`: {lr_predictor, lr_encoder, steps[, spec][, buffer, buffer_size,
  buffer_weighting]}) into an `AdaptSetting` of arrays [G]; settings naming specs need `params` (arrays or
  shapes, with the union's adapters) for their masks, settings naming buffers the episode's `replans`."""
  if not settings:
    raise ValueError("settings must name at least one adaptation setting")
  for i, st in enumerate(settings):
    named = set(st) & set(BUFFER_KEYS)
    if not {"lr_predictor", "lr_encoder", "steps"} <= set(st) <= set(SETTING_KEYS) or int(st["steps"]) < 1 \
        or named not in (set(), set(BUFFER_KEYS)):
      raise ValueError(f"settings[{i}]={dict(st)!r}: needs lr_predictor, lr_encoder and steps >= 1, and "
                       "optionally spec and all of buffer, buffer_size, buffer_weighting (`setting_of`)")
  mask = None
  if union_spec(settings) is not None:
    if params is None:
      raise ValueError("settings naming specs need the params (or their shapes) to resolve them")
    masks = [jax.tree_util.tree_map(lambda l: jnp.float32(l != FROZEN), spec_lib.resolve(st["spec"], params))
             for st in settings]
    mask = jax.tree_util.tree_map(lambda *m: jnp.stack(m), *masks)
  rules = None
  if any("buffer" in st for st in settings):
    if replans is None:
      raise ValueError("settings naming buffers need the episode's replans (the unbounded buffer's size)")
    buffer_slots(settings, replans)   # every setting names one
    rules = [buffer_lib.buffer_rule(st["buffer"], int(st["buffer_size"]), replans, st["buffer_weighting"])
             for st in settings]
    rules = jax.tree_util.tree_map(lambda *r: jnp.stack(r), *rules)
  return AdaptSetting(lr_predictor=jnp.asarray([float(st["lr_predictor"]) for st in settings], jnp.float32),
                      lr_encoder=jnp.asarray([float(st["lr_encoder"]) for st in settings], jnp.float32),
                      steps=jnp.asarray([int(st["steps"]) for st in settings], jnp.int32), mask=mask,
                      buffer=rules)


def add_adapters(cfg: ml_collections.ConfigDict, params: optax.Params, key: chex.PRNGKey) -> optax.Params:
  """`params` plus zero-initialised LoRA adapters (rank `cfg.adapt.lora_rank`) when `cfg.adapt.spec` names
  'lora' and `params` has none yet; otherwise `params` unchanged."""
  if "lora" in spec_lib.parse(cfg.adapt.spec) and "lora" not in params:
    return spec_lib.with_adapters(key, params, cfg.adapt.lora_rank)
  return params


def prepare(cfg: ml_collections.ConfigDict, params: optax.Params, key: chex.PRNGKey
            ) -> tuple[optax.Params, Labels, optax.GradientTransformation]:
  """Resolves the `adapt` config section for `params`.

  Args:
    cfg: the run config (its `adapt` section: spec, lr_predictor, lr_encoder, optimizer, lora_rank; its `train`
      section supplies the learning rates left at None, see `learning_rates`).
    params: world-model params.
    key: PRNG key for the adapters.

  Returns:
    (params, labels, optimizer): params (with adapters if the spec asks, see `add_adapters`), their labels,
    the optimiser.
  """
  params = add_adapters(cfg, params, key)
  labels = spec_lib.resolve(cfg.adapt.spec, params)
  return params, labels, make_adapt_optimizer(labels, *learning_rates(cfg), cfg.adapt.optimizer)


def window_losses(params: optax.Params, windows: Batch, loss_fn: LossFn) -> jax.Array:
  """The loss of each window on its own, e.g. to score windows for the `hard` buffer policy.

  Args:
    params: world-model params.
    windows: a batched window pytree with leading axis N (e.g. `buffer.windows`, or one window with a
      leading axis of 1).
    loss_fn: (params, batch) -> (loss f32[], metrics).

  Returns:
    f32[N] per-window losses (the loss of a batch of one).
  """
  def one(window):
    return loss_fn(params, jax.tree_util.tree_map(lambda x: x[None], window))[0]
  return jax.vmap(one)(windows)


def partition(params: optax.Params, labels: Labels) -> tuple[optax.Params, optax.Params]:
  """Splits `params` by label into (trainable, frozen): two trees with the params' structure, each holding
  None where the other holds the leaf. `combine` is its inverse."""
  trainable = jax.tree_util.tree_map(lambda l, x: None if l == FROZEN else x, labels, params)
  frozen = jax.tree_util.tree_map(lambda l, x: x if l == FROZEN else None, labels, params)
  return trainable, frozen


def combine(trainable: optax.Params, frozen: optax.Params) -> optax.Params:
  """The full params from `partition`'s two halves (each leaf from the half that holds it)."""
  return jax.tree_util.tree_map(lambda t, f: f if t is None else t, trainable, frozen,
                                is_leaf=lambda x: x is None)


def _all_finite(tree):
  leaves = jax.tree_util.tree_leaves(tree)
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.bool_(True)


def adapt_step(params: optax.Params, opt_state: optax.OptState, buffer: buffer_lib.Buffer, *, loss_fn: LossFn,
               optimizer: optax.GradientTransformation, labels: Labels, steps: Union[int, jax.Array] = 1,
               reset: bool = True, max_steps: Optional[int] = None, update_mask: Optional[Any] = None
               ) -> tuple[optax.Params, optax.OptState, dict[str, jax.Array]]:
  """Takes `steps` masked optimiser steps of `loss_fn` on the buffer (pure; jittable and vmappable).

  Gradients are taken only with respect to adapted leaves (frozen leaves are constants, so no backward pass
  runs through layers that only feed frozen ones) and frozen leaves are returned untouched, bit for bit
  (`partition` / `combine`). A step whose loss or gradients are non-finite is skipped: params and optimiser
  state stay as they were and `skipped` counts it.

  Args:
    params: world-model params.
    opt_state: the optimiser state (ignored when `reset`; still returned so the scan carry keeps its type).
    buffer: an `adaptation.Buffer`; its `batch()` is the loss batch.
    loss_fn: (params, batch) -> (loss f32[], metrics), e.g. `wm.loss` (stop-gradient targets inside).
    optimizer: from `make_adapt_optimizer(labels, ...)`.
    labels: the labels the optimiser was built with.
    steps: U, the number of gradient steps: static, or a traced i32[] <= `max_steps`.
    reset: re-initialise the optimiser state first (the paper: fresh Adam moments every replan).
    max_steps: with a traced `steps`, the static number of steps scanned; those at or beyond `steps` leave
      params and optimiser state unchanged (the grid's masked steps). None: `steps`, which must be static.

  Returns:
    params: the updated params.
    opt_state: the updated optimiser state.
    metrics: {'loss_before' f32[] (loss before the first step; no extra forward pass is spent on the loss
      after the last step: evaluate `loss_fn` yourself if you need it),
      'skipped' i32[] (number of skipped steps), 'grad_norm' f32[] (global norm at the last step)}.

  Example:
    >>> params, labels, opt = prepare(cfg, params, key)
    >>> params, opt_state, m = adapt_step(params, opt.init(params), buf, loss_fn=wm.loss, optimizer=opt,
    ...                                   labels=labels)
  """
  masked = max_steps is not None
  length = int(max_steps) if masked else int(steps)
  if length < 1:
    raise ValueError(f"adapt_step: steps={steps!r} (max_steps={max_steps!r}) must be >= 1")
  batch = buffer.batch()
  if reset:
    opt_state = optimizer.init(params)
  trainable, frozen = partition(params, labels)
  zero_grads = jax.tree_util.tree_map(jnp.zeros_like, frozen)

  def loss_of(trainable):
    return loss_fn(combine(trainable, frozen), batch)[0]

  def one_step(carry, i):
    trainable, state, skipped = carry
    loss, grads = jax.value_and_grad(loss_of)(trainable)
    updates, new_state = optimizer.update(combine(grads, zero_grads), state, combine(trainable, frozen))
    ok = jnp.isfinite(loss) & _all_finite(grads)
    if masked:
      active = i < steps
      skipped = skipped + (active & ~ok).astype(jnp.int32)
      ok = ok & active
    else:
      skipped = skipped + (~ok).astype(jnp.int32)
    keep = lambda new, old: jnp.where(ok, new, old)  # noqa: E731
    # Only the adapted leaves are carried and selected: frozen leaves stay outside the scan, so under vmap
    # over episodes they stay unbatched (shared weights, plain convolutions), not one copy per episode.
    step_updates = partition(updates, labels)[0]
    if update_mask is not None:
      step_updates = jax.tree_util.tree_map(lambda u, m: u * m, step_updates, partition(update_mask, labels)[0])
    trainable = jax.tree_util.tree_map(keep, optax.apply_updates(trainable, step_updates), trainable)
    state = jax.tree_util.tree_map(keep, new_state, state)
    return (trainable, state, skipped), (loss, optax.tree.norm(grads))

  init = (trainable, opt_state, jnp.zeros((), jnp.int32))
  (trainable, opt_state, skipped), (losses, norms) = jax.lax.scan(one_step, init, jnp.arange(length))
  last = norms[jnp.clip(steps, 1, length) - 1] if masked else norms[-1]
  metrics = {"loss_before": losses[0], "skipped": skipped, "grad_norm": last}
  return combine(trainable, frozen), opt_state, metrics
