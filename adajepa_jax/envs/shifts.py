"""Distribution shifts as named, parameterised, pure functions that compose.

A shift acts in up to three places, each optional:
  visual     `(pixels uint8[..., H, W, 3], key) -> uint8[..., H, W, 3]`, applied alike to observations and
             goal images (independent noise draws);
  task_fn    `task -> task`, a data transform of the per-episode task pytree (dynamics scales, colours);
  env_kwargs overrides of the task constructor's kwargs (shape set, layout set).
A `Condition` bundles them with the task names it applies to (fnmatch patterns). The registry lists the
paper's conditions; `get('blur+low_mass')` composes registered ones.

Adding a shift takes a few lines:
  shifts.register(shifts.Condition(
      "snp10", "visual", visual=functools.partial(shifts.salt_and_pepper, density=0.1)))
  env = shifts.make_env("pusht", "snp10", image_size=64)     # a ShiftedEnv (brax Wrapper)

Example:
  cond = shifts.get("blur")
  pixels = cond.apply_pixels(obs["pixels"], key)
  task = cond.apply_task(task)
"""
import dataclasses
import fnmatch
import functools
import math
from typing import Any, Callable, Mapping, Optional

import brax.envs
import dm_pix
import jax
import jax.numpy as jnp

from adajepa_jax.envs import base, registry
from adajepa_jax.envs import shapes as shapes_lib
from adajepa_jax.errors import UsageError

RED = (0.9, 0.1, 0.1)
BLUR_SIGMA = 2.0              # the paper's sigma, in pixels of a ...
BLUR_REFERENCE_SIZE = 224     # ... 224 px observation; scaled to the actual image size
FAMILIES = ("clean", "visual", "dynamics", "shape", "layout", "composite")


# ------------------------------------------------------------------------------------------ visual shifts
def _flatten_images(pixels):
  pixels = jnp.asarray(pixels)
  if pixels.ndim < 3 or pixels.shape[-1] != 3:
    raise ValueError(f"Expected pixels of shape [..., H, W, 3], got {pixels.shape}")
  return pixels.reshape((-1,) + pixels.shape[-3:]), pixels.shape


def gaussian_blur(pixels, key, sigma=BLUR_SIGMA, reference_size=None):
  """Gaussian blur (dm-pix) with edge padding, so borders keep their brightness.

  Args:
    pixels: uint8[..., H, W, 3].
    key: unused (deterministic), kept for the common signature.
    sigma: standard deviation in pixels (of a `reference_size` image if given), a static float.
    reference_size: if given, `sigma` is scaled by H / reference_size, keeping the blur's relative
      strength across image sizes.

  Returns:
    uint8[..., H, W, 3].
  """
  del key
  flat, shape = _flatten_images(pixels)
  s = float(sigma) * (shape[-3] / reference_size if reference_size else 1.0)
  if s <= 0.0:
    raise ValueError(f"Blur sigma must be positive, got {sigma}")
  radius = max(1, math.ceil(3.0 * s))
  x = jnp.pad(flat.astype(jnp.float32) / 255.0, ((0, 0), (radius, radius), (radius, radius), (0, 0)),
              mode="edge")
  y = dm_pix.gaussian_blur(x, s, 2 * radius + 1, padding="VALID")
  return jnp.clip(jnp.round(y * 255.0), 0, 255).astype(jnp.uint8).reshape(shape)


def salt_and_pepper(pixels, key, density=0.01):
  """Turns a fraction `density` of pixels (all channels) white AND another `density` black, as the authors'
  `snp1` (1% white and 1% black) and `snp5` (5% and 5%) do.

  Args:
    pixels: uint8[..., H, W, 3].
    key: PRNG key.
    density: expected fraction of pixels turned white, and the same fraction turned black, in [0, 0.5].

  Returns:
    uint8[..., H, W, 3].
  """
  if not 0.0 <= density <= 0.5:
    raise ValueError(f"Salt-and-pepper density (white and black each) must be in [0, 0.5], got {density}")
  pixels = jnp.asarray(pixels)
  u = jax.random.uniform(key, pixels.shape[:-1] + (1,))
  out = jnp.where(u < density, jnp.uint8(255), pixels)
  return jnp.where((u >= density) & (u < 2.0 * density), jnp.uint8(0), out)


def darken(pixels, key, scale=0.5):
  """Multiplies intensities by `scale` (>= 0), rounding and clipping to uint8."""
  del key
  if scale < 0:
    raise ValueError(f"Darkening scale must be >= 0, got {scale}")
  y = jnp.round(jnp.asarray(pixels, jnp.float32) * scale)
  return jnp.clip(y, 0, 255).astype(jnp.uint8)


# ------------------------------------------------------------------------------------------ task shifts
def scale_dynamics(task, mass=1.0, damping=1.0, friction=1.0):
  """Multiplies the task's `mass_scale`, `damping_scale` and `friction_scale` (composes multiplicatively)."""
  return task.replace(mass_scale=task.mass_scale * mass, damping_scale=task.damping_scale * damping,
                      friction_scale=task.friction_scale * friction)


def recolour(task, part, colour=RED):
  """Sets `task.colours[part]` to `colour` (RGB in [0, 1]). Raises ValueError if the task has no `part`."""
  if part not in task.colours:
    raise ValueError(f"Task has no colour {part!r}; its colours: {', '.join(sorted(task.colours))}")
  old = task.colours[part]
  return task.replace(colours={**task.colours, part: jnp.broadcast_to(jnp.asarray(colour, old.dtype),
                                                                      jnp.shape(old))})


ALL_SHAPES = tuple(shapes_lib.TRAIN_SHAPES) + tuple(shapes_lib.TEST_SHAPES)


def pick_shape(task, index, shapes=ALL_SHAPES):
  """`task` with its block replaced by shape `shapes[index]` of an env built with `shapes` (the `shape_<name>`
  conditions: every shape runs in one compiled program, the episode's condition choosing its block)."""
  from adajepa_jax.envs import push
  _, _, table = push.shape_table(shapes)
  row = {k: jnp.broadcast_to(jnp.asarray(v[index]), jnp.shape(task.shape_id) + v.shape[1:])
         for k, v in table.items()}
  return task.replace(shape_id=jnp.full(jnp.shape(task.shape_id), index, jnp.int32), boxes=row["boxes"],
                      mask=row["mask"], mass=row["mass"], inertia=row["inertia"],
                      symmetry=row["symmetry"].astype(jnp.int32))


def shape_condition(shape):
  """The name of the condition that runs only `shape` (`shape_T`, ..., `shape_plus` for '+')."""
  return "shape_" + shape.replace("+", "plus")


# ------------------------------------------------------------------------------------------ conditions
@dataclasses.dataclass(frozen=True)
class Condition:
  """A named test condition.

  Attributes:
    name: registry name.
    family: one of FAMILIES.
    visual: optional `(pixels, key) -> pixels` applied to observations and goal images.
    task_fn: optional `task -> task`.
    env_kwargs: kwargs that override the task constructor's (e.g. `shapes`, `layouts`).
    tasks: fnmatch patterns of the task names the condition applies to.
    description: one line for listings.
    parts: for composites, the conditions composed (applies where all of them apply).
  """
  name: str
  family: str
  visual: Optional[Callable[[Any, Any], Any]] = None
  task_fn: Optional[Callable[[Any], Any]] = None
  env_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  tasks: tuple = ("*",)
  description: str = ""
  parts: tuple = ()

  def __post_init__(self):
    if self.family not in FAMILIES:
      raise ValueError(f"Unknown shift family {self.family!r}; valid families: {', '.join(FAMILIES)}")

  def applies_to(self, task_name):
    """True if the condition is defined for the registered task `task_name`."""
    if self.parts:
      return all(p.applies_to(task_name) for p in self.parts)
    return any(fnmatch.fnmatchcase(task_name, pat) for pat in self.tasks)

  def apply_pixels(self, pixels, key):
    """uint8[..., H, W, 3] -> uint8[..., H, W, 3] (identity without a visual shift)."""
    return pixels if self.visual is None else self.visual(pixels, key)

  def apply_obs(self, obs, key):
    """Applies the visual shift to `obs['pixels']`; other entries pass through."""
    return obs if self.visual is None else dict(obs, pixels=self.visual(obs["pixels"], key))

  def apply_task(self, task):
    return task if self.task_fn is None else self.task_fn(task)

  def check_applies(self, task_name):
    """Raises UsageError naming the shifts that do apply if this one does not apply to `task_name`."""
    if not self.applies_to(task_name):
      raise UsageError(f"Shift {self.name!r} does not apply to task {task_name!r}; shifts that do: "
                       f"{', '.join(applicable(task_name))}")

  def task_env(self, task_name, **kwargs):
    """The plain task env `task_name` built with `kwargs` and this condition's overrides (`env_kwargs`); the
    MPC episode applies the visual shift and task transform itself."""
    self.check_applies(task_name)
    return registry.make(task_name, **{**kwargs, **self.env_kwargs})

  def make_env(self, task_name, **kwargs):
    """`task_env` wrapped in a `ShiftedEnv` (observations and tasks shifted by the env itself)."""
    return ShiftedEnv(self.task_env(task_name, **kwargs), self)


def compose(*conditions, name=None):
  """Composes conditions (or registered names): visual shifts in order with split keys, task transforms in
  order, env kwargs merged (a conflict is an error); applies where all parts apply."""
  conds = tuple(get(c) if isinstance(c, str) else c for c in conditions)
  if not conds:
    raise ValueError("compose needs at least one condition")
  if len(conds) == 1 and name is None:
    return conds[0]
  kwargs = {}
  for c in conds:
    for k, v in c.env_kwargs.items():
      if k in kwargs and kwargs[k] != v:
        raise ValueError(f"Cannot compose shifts: both set env kwarg {k!r} ({kwargs[k]!r} vs {v!r})")
      kwargs[k] = v
  visuals = [c.visual for c in conds if c.visual is not None]
  task_fns = [c.task_fn for c in conds if c.task_fn is not None]

  def visual(pixels, key):
    for fn, k in zip(visuals, jax.random.split(key, len(visuals))):
      pixels = fn(pixels, k)
    return pixels

  def task_fn(task):
    for fn in task_fns:
      task = fn(task)
    return task

  return Condition(name or "+".join(c.name for c in conds), "composite",
                   visual=visual if visuals else None, task_fn=task_fn if task_fns else None,
                   env_kwargs=kwargs, description=" + ".join(c.description or c.name for c in conds),
                   parts=conds)


_REGISTRY = {}


def register(condition, overwrite=False):
  """Adds a condition to the registry (ValueError if the name is taken and not `overwrite`)."""
  if "+" in condition.name:
    raise ValueError(f"Shift names cannot contain '+' (it composes): {condition.name!r}")
  if condition.name in _REGISTRY and not overwrite:
    raise ValueError(f"Shift {condition.name!r} is already registered")
  _REGISTRY[condition.name] = condition
  return condition


def names():
  """Registered condition names, in registration order."""
  return list(_REGISTRY)


def get(name):
  """The registered condition `name`; 'a+b' composes registered conditions a and b.

  Raises:
    UsageError (a ValueError): naming the unknown condition and listing the registered ones.
  """
  if isinstance(name, Condition):
    return name
  parts = str(name).split("+")
  for p in parts:
    if p not in _REGISTRY:
      raise UsageError(f"Unknown shift {p!r}; valid shifts: {', '.join(names())} (compose with '+')")
  return _REGISTRY[parts[0]] if len(parts) == 1 else compose(*parts, name=name)


def same_env(conditions):
  """A condition or name, or a sequence of them, as a tuple of Conditions that one episode program can run.

  Raises:
    ValueError: for an empty sequence, or conditions whose env kwargs differ (they build different envs, so
      they need separate programs; `group_by_env` splits them).
  """
  conds = (conditions,) if isinstance(conditions, (str, Condition)) else tuple(conditions)
  conds = tuple(get(c) for c in conds)
  if not conds:
    raise ValueError("Expected at least one shift condition")
  for c in conds[1:]:
    if dict(c.env_kwargs) != dict(conds[0].env_kwargs):
      raise ValueError(f"Shifts {conds[0].name!r} and {c.name!r} build different envs (env kwargs "
                       f"{dict(conds[0].env_kwargs)!r} vs {dict(c.env_kwargs)!r}); run them as separate programs")
  return conds


def group_by_env(names):
  """Splits condition names into lists that build the same env (equal env kwargs), in first-seen order."""
  groups = []
  for name in names:
    kwargs = dict(get(name).env_kwargs)
    match = [g for g in groups if dict(get(g[0]).env_kwargs) == kwargs]
    if match:
      match[0].append(name)
    else:
      groups.append([name])
  return groups


def applicable(task_name):
  """Names of the registered conditions that apply to `task_name`."""
  return [n for n, c in _REGISTRY.items() if c.applies_to(task_name)]


def make_env(task_name, shift="clean", **kwargs):
  """`get(shift).make_env(task_name, **kwargs)`: the task under the condition, as a `ShiftedEnv`."""
  return get(shift).make_env(task_name, **kwargs)


class ShiftedEnv(brax.envs.Wrapper, base.TaskEnv):
  """A task under a condition: tasks from `sample_task` are transformed, and the visual shift is applied
  to every observation and to the goal observation (a fresh noise key per step, kept in
  `info['shift_key']`). Tasks built elsewhere should go through `condition.apply_task` first."""

  def __init__(self, env, condition):
    super().__init__(env)
    self.condition = get(condition)

  def sample_task(self, key):
    return self.condition.apply_task(self.env.sample_task(key))

  def reset(self, rng):
    k_task, k_reset = jax.random.split(rng)
    return self.reset_to(k_reset, self.sample_task(k_task))

  def reset_to(self, key, task):
    k_env, k_obs, k_goal, k_next = jax.random.split(key, 4)
    state = self.env.reset_to(k_env, task)
    info = dict(state.info, goal_obs=self.condition.apply_obs(state.info["goal_obs"], k_goal),
                shift_key=k_next)
    return state.replace(obs=self.condition.apply_obs(state.obs, k_obs), info=info)

  def step(self, state, action):
    k_next, k_obs = jax.random.split(state.info["shift_key"])
    state = self.env.step(state, action)
    return state.replace(obs=self.condition.apply_obs(state.obs, k_obs),
                         info=dict(state.info, shift_key=k_next))

  def render(self, state_vec, task, key=None):
    """Renders like the task, then applies the visual shift (key defaults to a fixed one)."""
    key = jax.random.key(0) if key is None else key
    return self.condition.apply_pixels(self.env.render(state_vec, task), key)

  def simulate(self, state, actions):
    """The task's physics (the state already carries the transformed task)."""
    return self.env.simulate(state, actions)

  def goal_cost(self, state_vec, goal_state):
    return self.env.goal_cost(state_vec, goal_state)


# ------------------------------------------------------------------------------------------ the registry
_PUSH, _MAZE, _ALL = ("push*",), ("pointmaze_*",), ("push*", "pointmaze_*")

for _c in (
    Condition("clean", "clean", tasks=("*",), description="no shift"),
    Condition("blur", "visual", visual=functools.partial(gaussian_blur, sigma=BLUR_SIGMA,
                                                         reference_size=BLUR_REFERENCE_SIZE),
              tasks=_ALL, description=f"Gaussian blur, sigma {BLUR_SIGMA} px at {BLUR_REFERENCE_SIZE} px"),
    Condition("snp1", "visual", visual=functools.partial(salt_and_pepper, density=0.01), tasks=_ALL,
              description="salt-and-pepper, 1% of pixels white and 1% black"),
    Condition("snp5", "visual", visual=functools.partial(salt_and_pepper, density=0.05), tasks=_ALL,
              description="salt-and-pepper, 5% of pixels white and 5% black"),
    Condition("dark", "visual", visual=functools.partial(darken, scale=0.5), tasks=_ALL,
              description="pixels x0.5"),
    Condition("red_block", "visual", task_fn=functools.partial(recolour, part="block"), tasks=_PUSH,
              description="block drawn red"),
    Condition("red_anchor", "visual", task_fn=functools.partial(recolour, part="anchor"), tasks=_PUSH,
              description="goal anchor drawn red"),
    Condition("red_agent", "visual", task_fn=functools.partial(recolour, part="agent"), tasks=_ALL,
              description="agent drawn red"),
    Condition("low_mass", "dynamics", task_fn=functools.partial(scale_dynamics, mass=0.2), tasks=_ALL,
              description="mass x0.2"),
    Condition("high_damping", "dynamics", task_fn=functools.partial(scale_dynamics, damping=20.0),
              tasks=_ALL, description="damping x20"),
    Condition("low_friction", "dynamics", task_fn=functools.partial(scale_dynamics, friction=0.2),
              tasks=_PUSH, description="friction x0.2 (mazes are frictionless)"),
    Condition("seen_shapes", "shape", env_kwargs={"shapes": tuple(shapes_lib.TRAIN_SHAPES)},
              tasks=("pushobj",), description="training shapes " + " ".join(shapes_lib.TRAIN_SHAPES)),
    Condition("unseen_shapes", "shape", env_kwargs={"shapes": tuple(shapes_lib.TEST_SHAPES)},
              tasks=("pushobj",), description="held-out shapes " + " ".join(shapes_lib.TEST_SHAPES)),
    *(Condition(shape_condition(name), "shape", task_fn=functools.partial(pick_shape, index=i),
                env_kwargs={"shapes": ALL_SHAPES}, tasks=("pushobj",),
                description=f"the {name} block only ({'seen' if name in shapes_lib.TRAIN_SHAPES else 'unseen'})")
      for i, name in enumerate(ALL_SHAPES)),
    Condition("seen_layouts", "layout", env_kwargs={"layouts": "train"}, tasks=("pointmaze_diverse",),
              description="the 25 training mazes"),
    Condition("unseen_layouts", "layout", env_kwargs={"layouts": "test"}, tasks=("pointmaze_diverse",),
              description="the 5 held-out mazes"),
):
  register(_c)
