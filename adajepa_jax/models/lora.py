"""Low-rank adapters (LoRA) on every dense kernel of the encoder and the predictor.

Adapters live in `params['lora']`, a tree that mirrors the paths of the adapted kernels:
`params['lora'][...path...]['kernel'] = {'a': f32[in, r], 'b': f32[r, out]}`. The effective kernel is
`kernel + (ALPHA / r) * a @ b`, the usual alpha / rank scaling (the paper: rank 8, alpha 16; facts in
`third_party/`). `b` starts at zero, so the model is unchanged until the adapters are trained. Convolution
kernels (4-D) and the action and proprio encoders are not adapted.

Example:
  params = dict(params, lora=lora.init_adapters(key, params, rank=8))
  merged = lora.merge(params)      # plain params, no 'lora' key; what every wm function runs on
"""
import flax.traverse_util as tu
import jax
import jax.numpy as jnp

LORA_KEY = "lora"
ALPHA = 16.0          # the adapters' scale is ALPHA / rank (rank 8: 2)
ADAPTED = ("encoder", "predictor")


def _dense_kernels(params):
  """Flat {path: kernel} of every 2-D 'kernel' leaf of params['encoder'] and params['predictor']."""
  flat = tu.flatten_dict({k: v for k, v in params.items() if k in ADAPTED})
  return {p: v for p, v in flat.items() if p[-1] == "kernel" and jnp.ndim(v) == 2}


def init_adapters(key, params, rank):
  """Creates rank-`rank` adapters for every dense kernel of `params`.

  Args:
    key: PRNG key.
    params: world-model params (nested dict).
    rank: adapter rank r >= 1.

  Returns:
    Nested dict mirroring the kernel paths, each leaf pair {'a': f32[in, r] ~ N(0, 1/in), 'b': zeros[r, out]}.
  """
  if int(rank) < 1:
    raise ValueError(f"LoRA rank must be >= 1, got {rank}")
  kernels = _dense_kernels(params)
  keys = jax.random.split(key, len(kernels))
  flat = {}
  for k, (path, w) in zip(keys, sorted(kernels.items())):
    fan_in, fan_out = w.shape
    flat[path + ("a",)] = jax.random.normal(k, (fan_in, rank), w.dtype) / jnp.sqrt(fan_in)
    flat[path + ("b",)] = jnp.zeros((rank, fan_out), w.dtype)
  return tu.unflatten_dict(flat)


def merge(params):
  """`params` without the 'lora' key, with `(ALPHA / r) * a @ b` added to each adapted kernel (identity if
  absent)."""
  if LORA_KEY not in params:
    return params
  base = {k: v for k, v in params.items() if k != LORA_KEY}
  flat = tu.flatten_dict(base)
  is_pair = lambda _, x: isinstance(x, dict) and "a" in x
  for path, ab in tu.flatten_dict(params[LORA_KEY], is_leaf=is_pair).items():
    if path not in flat:
      raise ValueError(f"LoRA adapter for {'/'.join(path)} has no matching kernel in params")
    flat[path] = flat[path] + (ALPHA / ab["a"].shape[1]) * (ab["a"] @ ab["b"])
  return tu.unflatten_dict(flat)
