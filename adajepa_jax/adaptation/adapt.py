"""One test-time adaptation step: masked Adam on the pretraining loss over the online buffer."""
import jax
import jax.numpy as jnp
import optax

from adajepa_jax.adaptation import buffer as buffer_lib
from adajepa_jax.adaptation import spec as spec_lib

FROZEN = spec_lib.FROZEN


def make_optimizer(labels, lr_predictor, lr_encoder):
  """Per-group Adam; frozen leaves get zero updates.

  Args:
    labels: pytree of 'predictor' / 'encoder' / 'frozen' strings (from `spec.resolve`).
    lr_predictor: Adam learning rate of 'predictor' leaves (paper: 5e-4).
    lr_encoder: Adam learning rate of 'encoder' leaves (paper: 1e-5).

  Returns:
    optax.GradientTransformation: `optax.multi_transform` over the three labels.
  """
  return optax.multi_transform(
      {spec_lib.PREDICTOR: optax.adam(lr_predictor), spec_lib.ENCODER: optax.adam(lr_encoder),
       FROZEN: optax.set_to_zero()}, labels)


def learning_rates(cfg):
  """(lr_predictor, lr_encoder) of test-time adaptation: `cfg.adapt.lr_*`, where None (the default) means
  the training rate `cfg.train.lr_*`, as the paper adapts at its training learning rates."""
  return tuple(float(cfg.train[k] if cfg.adapt[k] is None else cfg.adapt[k])
               for k in ("lr_predictor", "lr_encoder"))


def prepare(cfg, params, key):
  """Resolves the `adapt` config section for `params`.

  Adds zero-initialised LoRA adapters (rank `cfg.adapt.lora_rank`) when the spec contains 'lora'.

  Args:
    cfg: the run config (its `adapt` section: spec, lr_predictor, lr_encoder, lora_rank; its `train`
      section supplies the learning rates left at None, see `learning_rates`).
    params: world-model params.
    key: PRNG key for the adapters.

  Returns:
    (params, labels, optimizer): params (with adapters if needed), their labels, the optimiser.
  """
  atoms = spec_lib.parse(cfg.adapt.spec)
  if "lora" in atoms and "lora" not in params:
    params = spec_lib.with_adapters(key, params, cfg.adapt.lora_rank)
  labels = spec_lib.resolve(cfg.adapt.spec, params)
  return params, labels, make_optimizer(labels, *learning_rates(cfg))


def window_losses(params, windows, loss_fn):
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


def _select(frozen_value, trainable_value):
  """Per leaf: `frozen_value(...)` where the label is 'frozen', else `trainable_value(...)`."""
  def pick(label, *xs):
    return frozen_value(*xs) if label == FROZEN else trainable_value(*xs)
  return pick


def _all_finite(tree):
  leaves = jax.tree_util.tree_leaves(tree)
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.bool_(True)


def adapt_step(params, opt_state, buffer, *, loss_fn, optimizer, labels=None, steps=1, reset=True):
  """Takes `steps` masked optimiser steps of `loss_fn` on the buffer (pure; jittable and vmappable).

  With `labels`, gradients are taken only with respect to adapted leaves (frozen leaves are constants, so
  no backward pass runs through layers that only feed frozen ones) and frozen leaves are returned
  untouched, bit for bit. A step whose loss or gradients are non-finite is skipped: params and optimiser
  state stay as they were and `skipped` counts it.

  Args:
    params: world-model params.
    opt_state: the optimiser state (ignored when `reset`; still returned so the scan carry keeps its type).
    buffer: an `adaptation.Buffer` (its `batch()` is used) or a loss batch dict.
    loss_fn: (params, batch) -> (loss f32[], metrics), e.g. `wm.loss` (stop-gradient targets inside).
    optimizer: from `make_optimizer(labels, ...)`.
    labels: the labels the optimiser was built with (recommended), or None to differentiate every leaf.
    steps: U, the number of gradient steps (static).
    reset: re-initialise the optimiser state first (the paper: fresh Adam moments every replan).

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
  if int(steps) < 1:
    raise ValueError(f"adapt_step: steps={steps!r} must be >= 1")
  batch = buffer.batch() if isinstance(buffer, buffer_lib.Buffer) else buffer
  if reset:
    opt_state = optimizer.init(params)
  if labels is None:
    def split(p):
      return p

    def merge(p, trainable):
      del p
      return trainable

    def full_grads(p, g):
      del p
      return g
  else:
    def split(p):
      return jax.tree_util.tree_map(_select(lambda _: None, lambda x: x), labels, p)

    def merge(p, trainable):
      return jax.tree_util.tree_map(_select(lambda x, _: x, lambda _, t: t), labels, p, trainable)

    def full_grads(p, g):
      return jax.tree_util.tree_map(_select(lambda x, _: jnp.zeros_like(x), lambda _, t: t),
                                    labels, p, g)

  def loss_of(trainable, p):
    return loss_fn(merge(p, trainable), batch)[0]

  def one_step(carry, _):
    p, state, skipped = carry
    loss, grads = jax.value_and_grad(loss_of)(split(p), p)
    updates, new_state = optimizer.update(full_grads(p, grads), state, p)
    ok = jnp.isfinite(loss) & _all_finite(grads)
    keep = lambda new, old: jnp.where(ok, new, old)  # noqa: E731
    # Select only among adapted leaves: frozen leaves are passed through untouched, so under vmap over
    # episodes they stay unbatched (shared weights, plain convolutions) instead of one copy per episode.
    trainable = jax.tree_util.tree_map(keep, optax.apply_updates(split(p), split(updates)), split(p))
    p = merge(p, trainable)
    state = jax.tree_util.tree_map(keep, new_state, state)
    return (p, state, skipped + (~ok).astype(jnp.int32)), (loss, optax.tree.norm(grads))

  init = (params, opt_state, jnp.zeros((), jnp.int32))
  (params, opt_state, skipped), (losses, norms) = jax.lax.scan(one_step, init, None, length=int(steps))
  metrics = {"loss_before": losses[0], "skipped": skipped,
             "grad_norm": norms[-1]}
  return params, opt_state, metrics
