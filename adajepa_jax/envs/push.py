"""PushT / PushObj: a top-down pushing task in MJX with a pure-JAX renderer.

A sphere agent (two slide joints, position-controlled towards `agent xy + action`) pushes a quasi-static
block made of boxes (slide x, slide y, hinge z; strong damping and its velocity zeroed after every control
step, so it moves only while pushed) inside four wall planes. No gravity. The block's shape, mass, damping
and friction are per-episode data in the task pytree: the MJX model fields that depend on them are replaced
inside the traced step, so one compiled env runs a vmapped batch of episodes with different shapes.

World units: the reference 512-unit canvas is scaled by 1/100 (arena 5.12 x 5.12, origin bottom-left).
State (7): agent xy, block xy, block angle, agent velocity. Proprio (4): agent xy and velocity.
Success: L2 error over (agent xy, block xy) < 20/512 of the arena AND block angle error < 20 degrees.

Example:
  env = envs.make('pushobj', image_size=64)
  state = jax.jit(jax.vmap(env.reset))(jax.random.split(key, 8))
  state = jax.jit(jax.vmap(env.step))(state, jnp.zeros((8, 2)))
"""
from typing import Optional

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from flax import struct
from mujoco import mjx

from adajepa_jax.envs import base
from adajepa_jax.envs import render as R
from adajepa_jax.envs import push_policies as policies
from adajepa_jax.envs import shapes as shapes_lib
from adajepa_jax.envs.push_geometry import (ACTION_SCALE, AGENT_RADIUS, ANCHOR_POSE, ARENA, SCALE,
                                            SUCCESS_ANGLE, SUCCESS_POS, WALL, block_radius, wrap_angle)

BOX_HALF_Z = 0.2
# Agent: unit-mass PD of the reference (kp 100, kv 20) scaled by its mass so pushes barely slow it down.
AGENT_MASS = 10.0
KP = 100.0
KV = 20.0
# Block: viscous "ground friction" per unit mass (1/s) while pushed; velocity zeroed between control steps.
BLOCK_DAMPING = 50.0
FRICTION = 0.5                     # agent-block sliding friction (scaled by task.friction_scale)

GOAL_RULES = ("expert", "explore")
# Goals from the expert-like pusher (`policies.expert`):
EXPERT_LEAD = 40                   # expert steps before a goal segment may start (approach, first contact)
EXPERT_TRIES = 2                   # candidate expert trajectories per reset (the first with contact is kept)

DEFAULT_COLOURS = {
    "background": (1.0, 1.0, 1.0),
    "wall": (0.83, 0.83, 0.83),
    "agent": (0.255, 0.412, 0.882),    # royal blue
    "block": (0.467, 0.533, 0.600),    # light slate grey
    "anchor": (0.565, 0.933, 0.565),   # light green
}
STATE_SIZE = 7
PROPRIO_SIZE = 4
# PushTask fields that set the plain MuJoCo model (`mj_model_for`); `simulate_mujoco` caches models by them.


@struct.dataclass
class PushTask:
  """Per-episode task data (a pytree; everything here may differ across a vmapped batch).

  Attributes:
    shape_id: i32[] index into the env's shape list (-1 for a shape set by `with_shape`).
    boxes: f32[K, 4] block boxes (cx, cy, half_w, half_h) relative to its centre of mass, world units.
    mask: bool[K] real boxes (padding rows are tiny boxes hidden inside box 0).
    mass: f32[] block mass; inertia: f32[] about its centre of mass.
    anchor: f32[3] pose (x, y, theta) of the drawn goal anchor.
    colours: dict name -> f32[3] RGB in [0, 1] (background, wall, agent, block, anchor).
    mass_scale, damping_scale, friction_scale: f32[] dynamics multipliers (block mass and inertia, block
      damping, agent-block friction).
    symmetry: i32[] rotational symmetry order of the shape (4 square / +, 2 I / Z, 1 otherwise): the
      symmetry-aware success test compares angles modulo 2 pi / symmetry.
  """
  shape_id: jax.Array
  boxes: jax.Array
  mask: jax.Array
  mass: jax.Array
  inertia: jax.Array
  anchor: jax.Array
  colours: dict
  mass_scale: jax.Array
  damping_scale: jax.Array
  friction_scale: jax.Array
  symmetry: jax.Array


# One jitted MJX step shared by every call site (the goal rollout in `reset_to`, `step`): JAX traces and
# lowers it once per program instead of once per call site.
_mjx_step = jax.jit(mjx.step)


def shape_table(shapes, max_boxes=None):
  """The per-shape block arrays of an env with these shapes.

  Args:
    shapes: a sequence of shape names, `ShapeSpec`s or box lists.
    max_boxes: box rows per shape; default max(3, the largest shape's boxes).

  Returns:
    (specs, max_boxes, table): table = {'boxes' f32[K, max_boxes, 4], 'mask', 'mass', 'inertia',
    'symmetry'}, row k for shape k, in world units.
  """
  specs = [shapes_lib.resolve(s) for s in shapes]
  largest = max(s.num_boxes for s in specs)
  max_boxes = max(3, largest) if max_boxes is None else int(max_boxes)
  if largest > max_boxes:
    raise ValueError(f"A shape has {largest} boxes but max_boxes={max_boxes}")
  tables = [shapes_lib.shape_arrays(s, max_boxes, SCALE) for s in specs]
  return specs, max_boxes, {k: np.stack([t[k] for t in tables]) for k in tables[0]}


def _mjcf(max_boxes, timestep):
  boxes = "\n".join(
      f'<geom name="box{i}" type="box" size="0.1 0.1 {BOX_HALF_Z}" pos="0 0 0" condim="1"/>'
      for i in range(max_boxes))
  lo, hi, mid = WALL, ARENA - WALL, ARENA / 2
  walls = "\n".join(
      f'<geom name="wall{i}" type="plane" size="{mid} {mid} 0.1" pos="{p}" zaxis="{z}" condim="1"/>'
      for i, (p, z) in enumerate([(f"{lo} {mid} 0", "1 0 0"), (f"{hi} {mid} 0", "-1 0 0"),
                                  (f"{mid} {lo} 0", "0 1 0"), (f"{mid} {hi} 0", "0 -1 0")]))
  return f"""
<mujoco model="push">
  <option timestep="{timestep}" gravity="0 0 0" integrator="Euler" iterations="4" ls_iterations="8"/>
  <worldbody>
    {walls}
    <body name="agent">
      <joint name="ax" type="slide" axis="1 0 0" damping="{AGENT_MASS * KV}"/>
      <joint name="ay" type="slide" axis="0 1 0" damping="{AGENT_MASS * KV}"/>
      <geom name="agent" type="sphere" size="{AGENT_RADIUS}" mass="{AGENT_MASS}" condim="3"
            friction="{FRICTION} 0.005 0.0001"/>
    </body>
    <body name="block">
      <joint name="bx" type="slide" axis="1 0 0" damping="{BLOCK_DAMPING}"/>
      <joint name="by" type="slide" axis="0 1 0" damping="{BLOCK_DAMPING}"/>
      <joint name="bt" type="hinge" axis="0 0 1" damping="{BLOCK_DAMPING * 0.1}"/>
      <inertial pos="0 0 0" mass="1" diaginertia="0.1 0.1 0.1"/>
      {boxes}
    </body>
  </worldbody>
  <actuator>
    <position joint="ax" kp="{AGENT_MASS * KP}"/>
    <position joint="ay" kp="{AGENT_MASS * KP}"/>
  </actuator>
</mujoco>"""


def _is_box_list(x):
  """True for a non-empty list of 4-number boxes (one user shape rather than a list of shapes)."""
  is_box = lambda b: (isinstance(b, (list, tuple, np.ndarray)) and len(b) == 4
                      and all(isinstance(v, (int, float, np.number)) for v in b))
  return isinstance(x, (list, tuple)) and len(x) > 0 and all(is_box(b) for b in x)


def _block_moved(before, after):
  """bool[]: the block pose (entries 2:5 of a qpos or state vector) changed, i.e. the agent pushed it."""
  return jnp.max(jnp.abs(after[2:5] - before[2:5])) > 1e-4


def _errors(state_vec, goal_state, symmetry=1):
  """(position error, angle error) of full states f32[..., 7] against a goal: the L2 error over (agent xy,
  block xy) and the absolute block angle error modulo 2 pi / symmetry (see `PushEnv.success`)."""
  pos_err = jnp.linalg.norm(state_vec[..., :4] - goal_state[..., :4], axis=-1)
  return pos_err, jnp.abs(wrap_angle(state_vec[..., 4] - goal_state[..., 4], symmetry))


class PushEnv(base.TaskEnv, base.ExpertPolicy, base.HostPhysics):
  """PushT / PushObj task (brax `Env` protocol, MJX physics, pure-JAX rendering).

  Args:
    shapes: a sequence of shapes, each a name (see `shapes.names()`), a `ShapeSpec` or a list of
      (cx, cy, width, height) boxes in reference units; a single name or box list is one shape.
      Episodes sample among them.
    image_size: side of the rendered observations in pixels.
    max_boxes: fixed number of box geoms (default: max(3, largest shape)); shapes set later by
      `with_shape` must fit.
    substeps: physics steps per control step; timestep: physics dt (defaults: 10 x 0.01 s = 10 Hz).
    goal_steps: env steps from the episode's start state to its goal state.
    goal_rule: how start and goal are made. `expert` (default, the paper's protocol): the expert-like pusher
      (`expert_action`) pushes the block towards a random target pose from a random initial state; the start
      is a state on that trajectory just before its first contact and the goal the state `goal_steps` later,
      so the segment contains contact. `explore`: the start is the random initial state and the goal the
      state after `goal_steps` exploration steps (`explore_action`; goals about 10x farther).
    colours: optional overrides of `DEFAULT_COLOURS`.
  """
  # The task fields `mj_model_for` reads (the host model cache's key).
  mj_task_fields = ("boxes", "mass", "inertia", "mass_scale", "damping_scale", "friction_scale")

  def __init__(self, shapes=("T",), image_size: int = 64, max_boxes: Optional[int] = None,
               substeps: int = 10, timestep: float = 0.01, goal_steps: int = 25, goal_rule: str = "expert",
               colours=None):
    if isinstance(shapes, (str, shapes_lib.ShapeSpec)) or _is_box_list(shapes):
      shapes = (shapes,)   # one shape given directly
    if len(shapes) == 0:
      raise ValueError(f"PushEnv needs at least one shape; valid shapes: {', '.join(shapes_lib.names())}")
    if not isinstance(image_size, (int, np.integer)) or image_size < 8:
      raise ValueError(f"image_size must be an int >= 8, got {image_size!r}")
    specs, max_boxes, self._table = shape_table(shapes, max_boxes)
    colours = dict(DEFAULT_COLOURS, **(colours or {}))
    unknown = set(colours) - set(DEFAULT_COLOURS)
    if unknown:
      raise ValueError(f"Unknown colour names {sorted(unknown)}; valid: {', '.join(DEFAULT_COLOURS)}")
    if goal_rule not in GOAL_RULES:
      raise ValueError(f"Unknown goal_rule {goal_rule!r}; valid: {', '.join(GOAL_RULES)}")
    if int(substeps) < 1 or int(goal_steps) < 0:
      raise ValueError(f"substeps must be >= 1 and goal_steps >= 0, got {substeps}, {goal_steps}")

    self.shape_specs = tuple(specs)
    self.shape_names = tuple(s.name for s in specs)
    self.image_size = int(image_size)
    self.max_boxes = max_boxes
    self.substeps = int(substeps)
    self.goal_steps = int(goal_steps)
    self.goal_rule = goal_rule
    self.proprio_size = PROPRIO_SIZE
    self.state_size = STATE_SIZE
    self._colours = {k: np.asarray(v, np.float32) for k, v in colours.items()}

    self.mj_model = mujoco.MjModel.from_xml_string(_mjcf(max_boxes, timestep))
    # This process's own device (jax.devices()[0] belongs to process 0 on several hosts).
    self._mjx = mjx.put_model(self.mj_model, device=jax.local_devices()[0])
    self._d0 = mjx.make_data(self._mjx, device=jax.local_devices()[0])
    mj = self.mj_model
    self._block_body = mj.body("block").id
    self._block_geoms = np.array([mj.geom(f"box{i}").id for i in range(max_boxes)])
    self._agent_geom = mj.geom("agent").id
    self._block_dofs = np.array([mj.joint(n).dofadr[0] for n in ("bx", "by", "bt")])
    self._ref_inertia = float(mj.body_inertia[self._block_body, 2])
    self._ref_invweight = np.asarray(mj.body_invweight0[self._block_body], np.float32)
    self._pixels = R.pixel_centres(self.image_size, ARENA)

  # --- brax Env protocol -------------------------------------------------------------------------------
  @property
  def action_size(self) -> int:
    return 2

  def sample_task(self, key):
    """Picks one of the env's shapes uniformly; default colours and unit dynamics scales."""
    idx = jax.random.randint(key, (), 0, len(self.shape_specs))
    return self._task_from_table(idx)

  def task_for_shape(self, index):
    """The default task of shape number `index` of this env (a Python int or i32[])."""
    return self._task_from_table(jnp.asarray(index, jnp.int32))

  def _task_from_table(self, idx):
    t = {k: jnp.asarray(v)[idx] for k, v in self._table.items()}
    return PushTask(
        shape_id=idx.astype(jnp.int32), boxes=t["boxes"], mask=t["mask"], mass=t["mass"],
        inertia=t["inertia"], anchor=jnp.asarray(ANCHOR_POSE, jnp.float32),
        colours={k: jnp.asarray(v) for k, v in self._colours.items()},
        mass_scale=jnp.float32(1.0), damping_scale=jnp.float32(1.0), friction_scale=jnp.float32(1.0),
        symmetry=t["symmetry"].astype(jnp.int32))

  def with_shape(self, task, shape):
    """Returns `task` with its block replaced by `shape` (name, `ShapeSpec` or box list); shape_id -1."""
    a = shapes_lib.shape_arrays(shapes_lib.resolve(shape), self.max_boxes, SCALE)
    ones = jnp.ones(jnp.shape(task.shape_id), jnp.int32)
    bcast = lambda x: jnp.broadcast_to(x, jnp.shape(task.shape_id) + np.shape(x))
    return task.replace(shape_id=-ones, boxes=bcast(a["boxes"]), mask=bcast(a["mask"]),
                        mass=bcast(a["mass"]), inertia=bcast(a["inertia"]), symmetry=bcast(a["symmetry"]))

  def reset_to(self, key, task) -> base.State:
    """Start and goal by `goal_rule` (see the class docstring); info['expert_target'] is the expert's pose,
    info['goal_contact'] 1 when the block moved between start and goal."""
    model = self._model(task)
    if self.goal_rule == "expert":
      # EXPERT_TRIES candidate expert trajectories; the first whose segment holds contact and whose start
      # does not already pass the success test is kept (the first one if none does).
      cands = jax.vmap(lambda k: self._segment(k, task, model, True))(jax.random.split(key, EXPERT_TRIES))
      vec = lambda qv: jnp.concatenate([qv[0][..., :5], qv[1][..., :2]], -1)
      needs_push = self.success(vec(cands[0]), vec(cands[1])) < 0.5
      pick = jnp.argmax(cands[-1] & needs_push)
      start, goal, target, goal_contact = jax.tree.map(lambda x: x[pick], cands)
    else:
      start, goal, target, goal_contact = self._segment(key, task, model, False)
    make = lambda qv: self._d0.replace(qpos=qv[0], qvel=qv[1], ctrl=qv[0][:2])
    data, goal_data = make(start), make(goal)
    goal_state = self._state_vec(goal_data)
    state_vec = self._state_vec(data)
    info = {
        "task": task,
        "goal_state": goal_state,
        "goal_obs": self._obs(goal_state, task),
        "goal_contact": goal_contact.astype(jnp.float32),
        "expert_target": target,
        "state": state_vec,
        "steps": jnp.int32(0),
    }
    metrics = self._metrics(state_vec, goal_state, task, contact=jnp.float32(0.0))
    return base.State(pipeline_state=data, obs=self._obs(state_vec, task), reward=-metrics["state_error"],
                      done=jnp.float32(0.0), metrics=metrics, info=info)

  def _segment(self, key, task, model, expert):
    """One start/goal pair: ((qpos, qvel) start, (qpos, qvel) goal, expert target f32[3], contact bool[])."""
    k_init, k_goal, k_lead = jax.random.split(key, 3)
    qpos, target = self._sample_qpos(k_init, task, expert)
    data = self._d0.replace(qpos=qpos, qvel=jnp.zeros_like(self._d0.qvel), ctrl=qpos[:2])
    steps = self.goal_steps + (EXPERT_LEAD if expert else 0)

    def goal_step(carry, k):
      d, prev = carry
      s = self._state_vec(d)
      a = policies.expert(k, s, task, target, prev) if expert else policies.explore(k, s, task, prev)
      nd = self._physics(model, d, a)
      moved = _block_moved(d.qpos, nd.qpos)
      return (nd, a), (nd.qpos, nd.qvel, moved)

    (end, _), (qposes, qvels, moved) = jax.lax.scan(goal_step, (data, jnp.zeros(2)),
                                                    jax.random.split(k_goal, steps))
    if not expert:
      return (data.qpos, data.qvel), (end.qpos, end.qvel), target, jnp.any(moved)
    # Start 0-5 steps before the first contact (at most EXPERT_LEAD steps in), goal `goal_steps` later.
    qposes = jnp.concatenate([data.qpos[None], qposes])
    qvels = jnp.concatenate([data.qvel[None], qvels])
    t0 = jnp.clip(jnp.argmax(moved) - jax.random.randint(k_lead, (), 0, 6), 0, EXPERT_LEAD)
    t = jnp.arange(steps)
    contact = jnp.any(moved & (t >= t0) & (t < t0 + self.goal_steps))
    t1 = t0 + self.goal_steps
    return (qposes[t0], qvels[t0]), (qposes[t1], qvels[t1]), target, contact

  def step(self, state, action) -> base.State:
    """One 10 Hz control step: agent target = agent xy + ACTION_SCALE * clip(action, -1, 1)."""
    action = self.check_action(action)
    task = state.info["task"]
    data = self._physics(self._model(task), state.pipeline_state, action)
    state_vec = self._state_vec(data)
    moved = _block_moved(state.info["state"], state_vec)
    metrics = self._metrics(state_vec, state.info["goal_state"], task, contact=moved.astype(jnp.float32))
    info = dict(state.info, state=state_vec, steps=state.info["steps"] + 1)
    return state.replace(pipeline_state=data, obs=self._obs(state_vec, task), reward=-metrics["state_error"],
                         metrics=metrics, info=info)

  def explore_action(self, key, state, prev_action):
    """Scripted pushes: head for a random point on the block (and beyond it), plus noise and momentum."""
    return policies.explore(key, state.info["state"], state.info["task"], prev_action)

  def expert_action(self, key, state, prev_action):
    """The expert-like pusher: pushes the block towards `state.info['expert_target']` (`policies.expert`)."""
    return policies.expert(key, state.info["state"], state.info["task"], state.info["expert_target"],
                        prev_action)

  def simulate(self, state, actions):
    """Physics only (no rendering): the full states f32[T, 7] after each of `actions` f32[T, 2] from `state`.

    The true-simulator model of the planning ceiling (`mpc.oracle`)."""
    model = self._model(state.info["task"])

    def body(d, a):
      d = self._physics(model, d, a)
      return d, self._state_vec(d)

    return jax.lax.scan(body, state.pipeline_state, actions)[1]

  def goal_cost(self, state_vec, goal_state):
    """Squared goal error in units of the success tolerances: f32[...] (< 1 per term inside them)."""
    pos = jnp.sum(jnp.square(state_vec[..., :4] - goal_state[..., :4]), -1) / SUCCESS_POS ** 2
    ang = jnp.square(wrap_angle(state_vec[..., 4] - goal_state[..., 4]) / SUCCESS_ANGLE)
    return pos + ang

  # --- rendering --------------------------------------------------------------------------------------
  def render(self, state_vec, task):
    """Renders a full state f32[7] of `task` -> uint8[H, W, 3] (walls, anchor, block, agent)."""
    p = self._pixels
    px = ARENA / self.image_size
    col = task.colours
    canvas = jnp.broadcast_to(jnp.asarray(col["background"], jnp.float32), p.shape[:2] + (3,))
    inner = R.box_sdf(p, jnp.full((2,), ARENA / 2), jnp.full((2,), ARENA / 2 - WALL))
    canvas = R.paint(canvas, R.coverage(-inner, px), col["wall"])
    anchor = R.boxes_sdf(p, task.boxes, task.mask, task.anchor)
    canvas = R.paint(canvas, R.coverage(anchor, px), col["anchor"])
    canvas = R.paint(canvas, R.coverage(R.boxes_sdf(p, task.boxes, task.mask, state_vec[2:5]), px),
                     col["block"])
    canvas = R.paint(canvas, R.coverage(R.disc_sdf(p, state_vec[:2], AGENT_RADIUS), px), col["agent"])
    return R.to_uint8(canvas)

  def mj_model_for(self, task=0):
    """A plain MuJoCo (C) `MjModel` of `task` (an unbatched PushTask, or the index of one of the env's shapes
    with unit dynamics scales): the block fields that `_model` sets in MJX, then `mj_setConst`."""
    if isinstance(task, (int, np.integer)):
      task = self.task_for_shape(task)
    t = {k: np.asarray(getattr(task, k), np.float64) for k in self.mj_task_fields}
    mass, inertia = t["mass"] * t["mass_scale"], t["inertia"] * t["mass_scale"]
    mj = mujoco.MjModel.from_xml_string(_mjcf(self.max_boxes, self.mj_model.opt.timestep))
    g, b = self._block_geoms, self._block_body
    mj.geom_size[g, :2] = t["boxes"][:, 2:]
    mj.geom_pos[g, :2] = t["boxes"][:, :2]
    mj.geom_friction[[self._agent_geom, *g], 0] = FRICTION * t["friction_scale"]
    mj.body_mass[b] = mass
    mj.body_inertia[b] = inertia
    mj.dof_damping[self._block_dofs] = BLOCK_DAMPING * t["damping_scale"] * np.array([mass, mass, inertia])
    mj.geom_rbound[g] = np.linalg.norm(mj.geom_size[g], axis=-1)
    mujoco.mj_setConst(mj, mujoco.MjData(mj))
    return mj

  def mj_control_step(self, mj, md, action):
    """One control step of the plain MuJoCo model (same control law as `step`); mutates `md`."""
    lo, hi = WALL + AGENT_RADIUS, ARENA - WALL - AGENT_RADIUS
    md.ctrl[:] = np.clip(md.qpos[:2] + ACTION_SCALE * np.clip(action, -1.0, 1.0), lo, hi)
    mujoco.mj_step(mj, md, nstep=self.substeps)
    md.qvel[self._block_dofs] = 0.0

  def mj_set_state(self, md, state_vec):
    """qpos = agent xy, block xy, angle; qvel = the agent's velocity (the block at rest)."""
    md.qpos[:5], md.qvel[:2] = state_vec[:5], state_vec[5:]

  def mj_get_state(self, md):
    return np.concatenate([md.qpos[:5], md.qvel[:2]])

  # --- internals --------------------------------------------------------------------------------------
  def _obs(self, state_vec, task):
    return {"pixels": self.render(state_vec, task),
            "proprio": jnp.concatenate([state_vec[:2], state_vec[5:7]])}

  @staticmethod
  def _state_vec(d):
    return jnp.concatenate([d.qpos[:5], d.qvel[:2]]).astype(jnp.float32)

  def _metrics(self, state_vec, goal_state, task, contact):
    pos_err, ang_err = _errors(state_vec, goal_state)
    return {"success": self.success(state_vec, goal_state), "state_error": pos_err, "angle_error": ang_err,
            "success_sym": self.success(state_vec, goal_state, task.symmetry), "contact": contact,
            "agent_error": jnp.linalg.norm(state_vec[:2] - goal_state[:2]),
            "block_error": jnp.linalg.norm(state_vec[2:4] - goal_state[2:4])}

  def success(self, state_vec, goal_state, symmetry=1):
    """The success test on full states: f32 0/1 (batched over leading axes).

    The paper's test: L2 over (agent xy, block xy) < SUCCESS_POS and block angle error < SUCCESS_ANGLE.
    With `symmetry` k > 1 (i32, broadcastable) the angle error is taken modulo 2 pi / k, so a pose that looks
    identical to the goal counts (the symmetry-aware variant for symmetric shapes).
    """
    pos_err, ang_err = _errors(state_vec, goal_state, symmetry)
    return ((pos_err < SUCCESS_POS) & (ang_err < SUCCESS_ANGLE)).astype(jnp.float32)

  def _model(self, task):
    """The MJX model with the block fields of `task` (traced; batched under vmap)."""
    m = self._mjx
    g, b, dofs = self._block_geoms, self._block_body, self._block_dofs
    mass = task.mass * task.mass_scale
    inertia = task.inertia * task.mass_scale
    half = task.boxes[:, 2:]
    size = jnp.concatenate([half, jnp.full((self.max_boxes, 1), BOX_HALF_Z)], axis=1)
    pos = jnp.concatenate([task.boxes[:, :2], jnp.zeros((self.max_boxes, 1))], axis=1)
    damping = BLOCK_DAMPING * task.damping_scale * jnp.stack([mass, mass, inertia])
    invweight = jnp.asarray(self._ref_invweight) * jnp.stack([1.0 / mass, self._ref_inertia / inertia])
    friction = FRICTION * task.friction_scale
    return m.replace(
        geom_size=m.geom_size.at[g].set(size),
        geom_pos=m.geom_pos.at[g].set(pos),
        geom_rbound=m.geom_rbound.at[g].set(jnp.linalg.norm(size, axis=-1)),
        geom_friction=m.geom_friction.at[self._agent_geom, 0].set(friction).at[g, 0].set(friction),
        body_mass=m.body_mass.at[b].set(mass),
        body_inertia=m.body_inertia.at[b].set(jnp.stack([inertia, inertia, inertia])),
        body_invweight0=m.body_invweight0.at[b].set(invweight),
        dof_damping=m.dof_damping.at[dofs].set(damping),
    )

  def _physics(self, model, data, action):
    lo, hi = WALL + AGENT_RADIUS, ARENA - WALL - AGENT_RADIUS
    target = jnp.clip(data.qpos[:2] + ACTION_SCALE * jnp.clip(action, -1.0, 1.0), lo, hi)
    data = data.replace(ctrl=target)
    data = jax.lax.fori_loop(0, self.substeps, lambda _, d: _mjx_step(model, d), data)
    return data.replace(qvel=data.qvel.at[self._block_dofs].set(0.0))

  def _sample_qpos(self, key, task, expert=False, tries=8):
    """Initial qpos f32[5] and the expert's target pose f32[3].

    Block uniform in [100, 400]^2 (reference units), any angle; agent 0-150 units off the block; target a
    random pose in [100, 400]^2. With `expert` the block starts in [150, 362]^2 (room to get behind it), the
    target position lies 100-250 units away from it in a random direction, and the agent starts on the far
    side of the block from the target (within 40 degrees of the push line), where an expert's push begins.
    """
    kb, ka, kd, kr, kt, kth = jax.random.split(key, 6)
    lo_b, hi_b = (150, 362) if expert else (100, 400)
    block_xy = jax.random.uniform(kb, (2,), minval=lo_b * SCALE, maxval=hi_b * SCALE)
    theta = jax.random.uniform(ka, (), minval=-jnp.pi, maxval=jnp.pi)
    kdir, kdist = jax.random.split(kt)
    if expert:
      phi = jax.random.uniform(kdir, (), minval=-jnp.pi, maxval=jnp.pi)
      dist_t = jax.random.uniform(kdist, (), minval=100 * SCALE, maxval=250 * SCALE)
      target_xy = jnp.clip(block_xy + dist_t * jnp.stack([jnp.cos(phi), jnp.sin(phi)]), 100 * SCALE,
                           400 * SCALE)
      away = block_xy - target_xy
      angles = jnp.arctan2(away[1], away[0]) + jax.random.uniform(kd, (tries,), minval=-0.7, maxval=0.7)
    else:
      target_xy = jax.random.uniform(kdir, (2,), minval=100 * SCALE, maxval=400 * SCALE)
      angles = jax.random.uniform(kd, (tries,), minval=-jnp.pi, maxval=jnp.pi)
    target = jnp.concatenate([target_xy, jax.random.uniform(kth, (1,), minval=-jnp.pi, maxval=jnp.pi)])
    reach = block_radius(task) + AGENT_RADIUS
    dist = jax.random.uniform(kr, (tries,), minval=0.3 * reach, maxval=reach + 150 * SCALE)
    cands = block_xy + dist[:, None] * jnp.stack([jnp.cos(angles), jnp.sin(angles)], -1)
    lo, hi = WALL + AGENT_RADIUS + 0.02, ARENA - WALL - AGENT_RADIUS - 0.02
    cands = jnp.clip(cands, lo, hi)
    sdf = R.boxes_sdf(cands, task.boxes, task.mask, jnp.concatenate([block_xy, theta[None]]))
    ok = sdf > AGENT_RADIUS + 0.02
    agent_xy = cands[jnp.argmax(ok)]   # first non-overlapping candidate (the last one if none is)
    return jnp.concatenate([agent_xy, block_xy, theta[None]]), target


def make_pusht(**kwargs):
  """PushT: the unit-30 T block (kwargs as `PushEnv`, `shapes` fixed to ('T',))."""
  if "shapes" in kwargs:
    raise ValueError("pusht always uses shapes=('T',); use 'pushobj' to choose shapes")
  return PushEnv(shapes=("T",), **kwargs)


def make_pushobj(shapes=shapes_lib.TRAIN_SHAPES, **kwargs):
  """PushObj: blocks of several shapes (default the training set T, L, Z, +)."""
  return PushEnv(shapes=shapes, **kwargs)
