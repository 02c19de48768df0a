"""Adaptation specs: strings like "predlast+enclast" resolved to per-leaf labels of a param tree.

Each leaf of the world-model params gets one label: 'predictor' (adapted at the predictor learning rate),
'encoder' (adapted at the encoder learning rate) or 'frozen'. Adapted leaves under params['encoder'] (or
adapters of encoder kernels, params['lora']['encoder']) are 'encoder'; every other adapted leaf (predictor,
action/proprio encoders, their adapters) is 'predictor'.

Atoms (combine with '+'):
  predlast        the predictor's last block + final_norm + out_proj
  predlastblock   the predictor's last block + final_norm only: the paper's default half (its predictor has
                  no output map)
  predfirst       the predictor's first block
  predfirstlast   predfirst + predlast
  enclast         the encoder's projection head
  encfirst        the encoder's stem
  encfrozen       everything except the encoder (predictor, action and proprio encoders)
  lora            the low-rank adapters params['lora'] only (add them with `with_adapters` first)
  all             every parameter (except a visualisation decoder)
"""
from typing import Any, Optional

import chex
import jax
import optax

from adajepa_jax.errors import UsageError
from adajepa_jax.models import lora as lora_lib
from adajepa_jax.models import world_model

PREDICTOR, ENCODER, FROZEN = "predictor", "encoder", "frozen"
Labels = Any   # a pytree with the params' structure whose leaves are PREDICTOR / ENCODER / FROZEN strings
LABELS = (PREDICTOR, ENCODER, FROZEN)
ATOMS = ("predlast", "predlastblock", "predfirst", "predfirstlast", "enclast", "encfirst", "encfrozen", "lora", "all")
DEFAULT = "predlast+enclast"
_NEVER_ADAPTED = ("decoder",)   # trained on detached latents for pictures only; never in the loss


def names() -> tuple[str, ...]:
  """The valid spec atoms; a spec is one atom or several joined by '+'."""
  return ATOMS


def parse(spec_str: str) -> tuple[str, ...]:
  """Splits a spec string into its atoms, validating each.

  Args:
    spec_str: e.g. "predlast+enclast".

  Returns:
    tuple of atoms, duplicates removed, in order of appearance.

  Raises:
    UsageError (a ValueError): for an unknown atom or an empty spec, listing the valid atoms.
  """
  if not isinstance(spec_str, str) or not spec_str.strip():
    raise UsageError(f"Empty adaptation spec {spec_str!r}; valid specs: {', '.join(ATOMS)} and '+' joins")
  atoms = tuple(dict.fromkeys(a.strip() for a in spec_str.split("+")))
  unknown = [a for a in atoms if a not in ATOMS]
  if unknown:
    raise UsageError(f"Unknown adaptation spec {unknown[0]!r} in {spec_str!r}; valid specs: "
                     f"{', '.join(ATOMS)} (join several with '+', e.g. {DEFAULT!r})")
  return atoms


def _path_keys(path):
  """A jax key path -> tuple of plain dict keys (as in `flax.traverse_util.flatten_dict`)."""
  return tuple(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k))) for k in path)


def _atom_prefixes(atom, params, groups):
  """Path prefixes selected by one atom."""
  top = [k for k in params if k not in _NEVER_ADAPTED]
  if atom == "all":
    return [(k,) for k in top]
  if atom == "encfrozen":
    return [(k,) for k in top if k not in ("encoder", lora_lib.LORA_KEY)]
  if atom == "lora":
    if lora_lib.LORA_KEY not in params:
      raise ValueError("Adaptation spec 'lora' needs params['lora']: add adapters with "
                       "adaptation.with_adapters(key, params, rank) first")
    return [(lora_lib.LORA_KEY,)]
  if atom == "predfirstlast":
    return list(groups["predfirst"]) + list(groups["predlast"])
  return list(groups[atom])


def resolve_paths(spec_str: str, params: optax.Params, groups: Optional[dict] = None
                  ) -> list[tuple[str, ...]]:
  """Resolves a spec to the sorted list of adapted leaf paths (tuples of keys).

  Args:
    spec_str: an adaptation spec (see module docstring).
    params: world-model params (nested dicts).
    groups: optional {'encfirst', 'enclast', 'predfirst', 'predlast': [path prefixes]}; defaults to
      `models.world_model.layer_groups(params)`.

  Raises:
    ValueError: unknown spec, or a prefix the spec names that is absent from `params`.
  """
  atoms = parse(spec_str)
  groups = world_model.layer_groups(params) if groups is None else groups
  flat = [_path_keys(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
  selected = set()
  for atom in atoms:
    for prefix in _atom_prefixes(atom, params, groups):
      hits = [p for p in flat if p[:len(prefix)] == tuple(prefix)]
      if not hits:
        raise ValueError(f"Adaptation spec {atom!r} names {'/'.join(prefix)}, which these params lack")
      selected.update(hits)
  return sorted(selected)


def resolve(spec_str: str, params: optax.Params, groups: Optional[dict] = None) -> Labels:
  """Labels every leaf of `params` as 'predictor', 'encoder' or 'frozen' for spec `spec_str`.

  Args:
    spec_str: an adaptation spec, e.g. "predlast+enclast".
    params: world-model params (nested dicts of arrays).
    groups: optional layer groups (see `resolve_paths`).

  Returns:
    A pytree with the structure of `params` whose leaves are label strings (for `optax.multi_transform`).

  Example:
    >>> labels = resolve("predlast+enclast", params)
    >>> labels["encoder"]["head"]["Dense_0"]["kernel"]
    'encoder'
  """
  adapted = set(resolve_paths(spec_str, params, groups))

  def label(path):
    if path not in adapted:
      return FROZEN
    body = path[1:] if path[0] == lora_lib.LORA_KEY else path
    return ENCODER if body and body[0] == "encoder" else PREDICTOR

  return jax.tree_util.tree_map_with_path(lambda path, _: label(_path_keys(path)), params)


def adapts_encoder_trunk(labels: Labels) -> bool:
  """True when a label under params['encoder'] (or its adapters) outside the head is not 'frozen'.

  While the trunk is frozen, a frame's trunk features (`wm.features`) stay valid as the params adapt.
  """
  def adapted(tree):
    return any(label != FROZEN for key, sub in tree.items() if key != "head"
               for label in jax.tree_util.tree_leaves(sub))
  return adapted(labels["encoder"]) or adapted(labels.get(lora_lib.LORA_KEY, {}).get("encoder", {}))


def trainable_mask(labels: Labels) -> Any:
  """bool pytree: True where a label is not 'frozen'."""
  return jax.tree_util.tree_map(lambda l: l != FROZEN, labels)


def with_adapters(key: chex.PRNGKey, params: optax.Params, rank: int) -> optax.Params:
  """Returns `params` plus zero-initialised rank-`rank` LoRA adapters on every dense kernel.

  The adapters' `b` factors are zero, so the model's outputs are unchanged until they are trained.
  """
  return dict(params, **{lora_lib.LORA_KEY: lora_lib.init_adapters(key, params, rank)})
