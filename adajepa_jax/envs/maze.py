"""PointMaze: an MJX ball on two slide joints in a maze whose layout is per-episode data.

Physics follow D4RL maze2d / Gymnasium-Robotics PointMaze (third_party/pointmaze.md): a sphere of radius
0.1 and density 1000 on two slide joints (damping 1), two motors with gear 100 and control in [-1, 1]^2,
timestep 0.01 (Euler) with 5 substeps per env step, velocity clipped to +-5 before each env step, contacts
frictionless (condim 1, as in maze2d, so the ball slides along walls; `friction_scale` is carried for
interface parity with the push tasks but has no effect here), contact margin 0 (maze2d: 0.002; see
`CONTACT_MARGIN`). No gravity: the maze is a top-down plane. Walls are 1 x 1 cells.

Layout as data: the wall mask lives in the task (`MazeTask.walls`, bool[R, C], fixed R x C per env). MJX
holds only nine wall boxes; before every substep they are moved onto the wall cells of the 3 x 3
neighbourhood of the ball's cell (free neighbours are parked far away, where they touch nothing). The ball
moves far less than one cell per substep, so it meets exactly the walls it would meet with every wall
present, at the collision cost of nine boxes instead of R * C (the Large maze has 108 cells). One compiled
env therefore runs a vmapped batch of episodes in different layouts and with different dynamics scales
(mass, damping, friction replace the batched MJX model fields inside `step`).

Cross-check: `mj_model_for(task)` is the same MJCF in plain MuJoCo C with a box on every wall cell, and
`cross_check(task, actions)` steps both engines from one state; `cross_check_scenarios` places free-motion,
wall-sliding and corner runs in a layout (tests/test_maze.py; `experiments/benchmark_envs.py --cross_check`).

World frame: x right, y up, cell (r, c) spans x in [c, c + 1], y in [R - 1 - r, R - r] (row 0 at the top).
Observations: `{'pixels': uint8[H, H, 3], 'proprio': f32[4]}` with proprio = state = (x, y, vx, vy). The
goal observation is the ball rendered at the goal with zero velocity. Success: distance to goal < 0.5.

Example:
  env = envs.make("pointmaze_diverse", image_size=64)
  state = jax.jit(env.reset)(jax.random.key(0))
  state = jax.jit(env.step)(state, jnp.array([1.0, 0.0]))
"""
import functools

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from flax import struct
from mujoco import mjx

from adajepa_jax.envs import base, mazes, render

BALL_RADIUS = 0.1
BALL_DENSITY = 1000.0
JOINT_DAMPING = 1.0
MOTOR_GEAR = 100.0
TIMESTEP = 0.01
FRAME_SKIP = 5
MAX_SPEED = 5.0
# D4RL's geom margin is 0.002; MJX's sphere-box collider ignores margins unless the sphere already penetrates
# a face (third_party/pointmaze.md), so with it the MJX ball chatters on walls and leaves MuJoCo C's path.
CONTACT_MARGIN = 0.0
SUCCESS_DISTANCE = 0.5
RENDER_RADIUS = 0.3   # the ball is drawn larger than its physical radius so it spans >= 3 px at 64 px
GOAL_RULES = ("euclid", "bfs")
_N_WALL_GEOMS = 9
_PARK = -1000.0

DEFAULT_COLOURS = {
    "background": (0.93, 0.93, 0.90),
    "wall": (0.25, 0.30, 0.40),
    "agent": (0.15, 0.35, 0.95),
    "goal": (0.20, 0.75, 0.30),
}


@struct.dataclass
class MazeTask:
  """One episode's maze.

  Attributes:
    walls: bool[R, C] wall mask (row 0 at the top).
    layout_id: i32[] diverse mazes: the global id 0-29; other layouts: the index in the env's `layouts`.
    start: f32[2] initial ball position.
    goal: f32[2] goal position.
    colours: dict of f32[3] RGB in [0, 1]: background, wall, agent, goal.
    mass_scale: f32[] multiplies the ball's mass and inertia.
    damping_scale: f32[] multiplies the joint damping.
    friction_scale: f32[] multiplies every geom's friction.
  """
  walls: jax.Array
  layout_id: jax.Array
  start: jax.Array
  goal: jax.Array
  colours: dict
  mass_scale: jax.Array
  damping_scale: jax.Array
  friction_scale: jax.Array


def _model_xml(wall_xy):
  """MJCF of the ball and one unit wall box centred on each row of `wall_xy` f32[N, 2] (z = 0)."""
  walls = "".join(f'<geom name="wall{i}" type="box" size="0.5 0.5 0.5" pos="{float(x)} {float(y)} 0"/>'
                  for i, (x, y) in enumerate(np.asarray(wall_xy)))
  return f"""
<mujoco model="pointmaze">
  <option timestep="{TIMESTEP}" gravity="0 0 0" iterations="4" ls_iterations="8"/>
  <default>
    <joint damping="{JOINT_DAMPING}" limited="false"/>
    <geom density="{BALL_DENSITY}" friction="0.5 0.1 0.1" margin="{CONTACT_MARGIN}" condim="1"/>
  </default>
  <worldbody>
    {walls}
    <body name="ball">
      <joint name="ball_x" type="slide" axis="1 0 0"/>
      <joint name="ball_y" type="slide" axis="0 1 0"/>
      <geom name="ball" type="sphere" size="{BALL_RADIUS}"/>
    </body>
  </worldbody>
  <actuator>
    <motor joint="ball_x" gear="{MOTOR_GEAR}" ctrlrange="-1 1" ctrllimited="true"/>
    <motor joint="ball_y" gear="{MOTOR_GEAR}" ctrlrange="-1 1" ctrllimited="true"/>
  </actuator>
</mujoco>"""


def _resolve_layouts(layouts):
  """-> (bool[L, R, C] masks, int ids). Accepts a name, a split, a layout string or a sequence of them."""
  if isinstance(layouts, str):
    if layouts in mazes.REFERENCE:
      return mazes.parse(mazes.REFERENCE[layouts])[None], (0,)
    if layouts in mazes.SPLITS:
      return mazes.diverse_split(layouts)
    if "\n" not in layouts.strip():
      raise ValueError(f"Unknown maze layout {layouts!r}; valid names: "
                       f"{', '.join(list(mazes.REFERENCE) + list(mazes.SPLITS))}, or a layout string")
    layouts = [layouts]
  arrays = [mazes.parse(l) if isinstance(l, str) else np.asarray(l, bool) for l in layouts]
  if not arrays:
    raise ValueError("`layouts` is empty; give at least one layout")
  shape = tuple(np.max([a.shape for a in arrays], axis=0))
  return np.stack([mazes.pad(a, shape) for a in arrays]), tuple(range(len(arrays)))


class PointMaze(base.TaskEnv, base.HostPhysics):
  """PointMaze task (see the module docstring).

  Args:
    layouts: 'umaze' | 'medium' | 'large' (reference maps), 'train' | 'test' | 'all' (diverse 8x8 splits),
      a layout string, or a sequence of layout strings / bool masks (padded with walls to a common shape).
      Each episode draws one uniformly.
    image_size: side of the rendered observation in pixels.
    goal_rule: 'euclid' (goal cell >= `min_goal_distance` cells from the start cell, Euclidean; AdaJEPA
      Medium) or 'bfs' (BFS shortest-path distance within `goal_band`; diverse mazes).
    min_goal_distance: for 'euclid', in cells.
    goal_band: for 'bfs', 'near' (3-5), 'mid' (6-9), 'far' (10-14) or an inclusive (low, high).
    jitter: start and goal positions are uniform within +-jitter of their cell centres.
    init_vel_std: std of the Gaussian initial velocity (0 for a ball at rest).
    explore_momentum: momentum of the exploration actions (0 = white noise).
    show_goal: draw a goal marker in observations (off by default; the goal is given as an image).
  """
  # The task fields `mj_model_for` reads (the host model cache's key).
  mj_task_fields = ("walls", "mass_scale", "damping_scale", "friction_scale")
  # 1: contact margin 0 and mass-scaled inverse weights (commit 201386a, 2026-12-02; MuJoCo C and MJX agree at walls).
  physics_version = 1

  def __init__(self, layouts="medium", image_size=64, goal_rule="euclid", min_goal_distance=3.0,
               goal_band="near", jitter=0.25, init_vel_std=0.1, explore_momentum=0.9, show_goal=False):
    if goal_rule not in GOAL_RULES:
      raise ValueError(f"Unknown goal_rule {goal_rule!r}; valid rules: {', '.join(GOAL_RULES)}")
    if int(image_size) < 8:
      raise ValueError(f"image_size must be >= 8 pixels, got {image_size}")
    if not 0.0 <= jitter < 0.5 - BALL_RADIUS:
      raise ValueError(f"jitter must be in [0, {0.5 - BALL_RADIUS}) so the ball starts inside its cell, "
                       f"got {jitter}")
    if not 0.0 <= explore_momentum < 1.0:
      raise ValueError(f"explore_momentum must be in [0, 1), got {explore_momentum}")
    walls, ids = _resolve_layouts(layouts)
    self.image_size = int(image_size)
    self.proprio_size = 4
    self.state_size = 4
    self.jitter = float(jitter)
    self.init_vel_std = float(init_vel_std)
    self.explore_momentum = float(explore_momentum)
    self.show_goal = bool(show_goal)
    self.grid_shape = walls.shape[1:]
    self.goal_rule = goal_rule
    self.goal_band = mazes.band(goal_band)

    pair_ok = np.stack([self._pairs(w, goal_rule, float(min_goal_distance)) for w in walls])
    start_ok = pair_ok.any(axis=-1)
    empty = [i for i in range(len(walls)) if not start_ok[i].any()]
    if empty:
      raise ValueError(f"No start/goal pair satisfies goal_rule={goal_rule!r} (min_goal_distance="
                       f"{min_goal_distance}, goal_band={self.goal_band}) in layouts {empty}")
    self._walls = jnp.asarray(walls)
    self._ids = jnp.asarray(ids, jnp.int32)
    self._pair_ok = jnp.asarray(pair_ok)
    self._start_ok = jnp.asarray(start_ok)

    park = np.array([[_PARK - 3 * i, _PARK, 0.0] for i in range(_N_WALL_GEOMS)], np.float32)
    mj = mujoco.MjModel.from_xml_string(_model_xml(park[:, :2]))
    # This process's own device (jax.devices()[0] belongs to process 0 on several hosts).
    self._mx = mjx.put_model(mj, device=jax.local_devices()[0])
    self._data0 = mjx.make_data(self._mx, device=jax.local_devices()[0])
    self._wall_geoms = np.array([mj.geom(f"wall{i}").id for i in range(_N_WALL_GEOMS)])
    self._ball_body = mj.body("ball").id
    offsets = np.array([(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)], np.int32)
    self._offsets = jnp.asarray(offsets)
    self._park = jnp.asarray(park)
    self._pixel_tables()

  # ---------------------------------------------------------------- layout helpers (numpy, static)
  def _pairs(self, walls, rule, min_dist):
    """bool[N, N]: (start cell, goal cell) pairs allowed by the goal rule (flattened row-major cells)."""
    free = ~walls.ravel()
    both = free[:, None] & free[None, :]
    if rule == "bfs":
      d = mazes.all_pairs_distances(walls)
      return both & (d >= self.goal_band[0]) & (d <= self.goal_band[1])
    rc = np.stack(np.unravel_index(np.arange(walls.size), walls.shape), -1).astype(np.float32)
    d = np.linalg.norm(rc[:, None] - rc[None, :], axis=-1)
    return both & (d >= min_dist)

  def _pixel_tables(self):
    """Static per-pixel tables: maze-frame pixel centres and the 3 x 3 neighbour cells of each pixel."""
    rows, cols = self.grid_shape
    extent = float(max(rows, cols))
    p = np.array(render.pixel_centres(self.image_size, extent))
    p -= np.array([(extent - cols) / 2.0, (extent - rows) / 2.0])
    r = rows - 1 - np.floor(p[..., 1]).astype(np.int32)
    c = np.floor(p[..., 0]).astype(np.int32)
    nb_r = np.stack([r + dr for dr in (-1, 0, 1) for _ in (-1, 0, 1)])
    nb_c = np.stack([c + dc for _ in (-1, 0, 1) for dc in (-1, 0, 1)])
    self._px = jnp.asarray(p, jnp.float32)                                      # [H, W, 2]
    self._nb_in = jnp.asarray((nb_r >= 0) & (nb_r < rows) & (nb_c >= 0) & (nb_c < cols))   # [9, H, W]
    self._nb_r = jnp.asarray(np.clip(nb_r, 0, rows - 1))
    self._nb_c = jnp.asarray(np.clip(nb_c, 0, cols - 1))
    centres = np.stack([nb_c + 0.5, rows - nb_r - 0.5], -1)
    self._nb_centre = jnp.asarray(centres, jnp.float32)                         # [9, H, W, 2]
    self._pixel_size = extent / self.image_size

  def cell_centre(self, cell):
    """Flattened cell index i32[...] -> f32[..., 2] world position of its centre."""
    rows, cols = self.grid_shape
    r, c = cell // cols, cell % cols
    return jnp.stack([c + 0.5, rows - r - 0.5], -1).astype(jnp.float32)

  def cell_of(self, xy):
    """World position f32[..., 2] -> (row, col) i32 of the containing cell (clipped to the grid)."""
    rows, cols = self.grid_shape
    c = jnp.clip(jnp.floor(xy[..., 0]).astype(jnp.int32), 0, cols - 1)
    r = jnp.clip(rows - 1 - jnp.floor(xy[..., 1]).astype(jnp.int32), 0, rows - 1)
    return r, c

  # ---------------------------------------------------------------- task protocol
  @property
  def action_size(self):
    return 2

  @property
  def num_layouts(self):
    return int(self._walls.shape[0])

  def default_colours(self):
    return {k: jnp.asarray(v, jnp.float32) for k, v in DEFAULT_COLOURS.items()}

  def make_task(self, walls, start, goal, layout_id=-1):
    """A task from explicit data (walls bool[R, C], start/goal f32[2]) with default colours and scales."""
    one = jnp.ones((), jnp.float32)
    return MazeTask(walls=jnp.asarray(walls, bool), layout_id=jnp.asarray(layout_id, jnp.int32),
                    start=jnp.asarray(start, jnp.float32), goal=jnp.asarray(goal, jnp.float32),
                    colours=self.default_colours(), mass_scale=one, damping_scale=one, friction_scale=one)

  def sample_task(self, key):
    """Draws a layout from the env's set, a start cell and a goal cell allowed by the goal rule, jitters."""
    k_layout, k_start, k_goal, k_jit = jax.random.split(key, 4)
    idx = jax.random.randint(k_layout, (), 0, self.num_layouts)
    start_cell = jax.random.categorical(k_start, jnp.where(self._start_ok[idx], 0.0, -jnp.inf))
    goal_cell = jax.random.categorical(k_goal, jnp.where(self._pair_ok[idx, start_cell], 0.0, -jnp.inf))
    jit = jax.random.uniform(k_jit, (2, 2), minval=-self.jitter, maxval=self.jitter)
    return self.make_task(self._walls[idx], self.cell_centre(start_cell) + jit[0],
                          self.cell_centre(goal_cell) + jit[1], self._ids[idx])

  def _check_task(self, task):
    if tuple(jnp.shape(task.walls)) != tuple(self.grid_shape):
      raise ValueError(f"Task walls have shape {tuple(jnp.shape(task.walls))} but this env's grid is "
                       f"{tuple(self.grid_shape)}; pad layouts with mazes.pad or build the env with them")

  def reset_to(self, key, task):
    self._check_task(task)
    vel = self.init_vel_std * jax.random.normal(key, (2,))
    data = self._data0.replace(qpos=jnp.asarray(task.start, jnp.float32), qvel=vel.astype(jnp.float32))
    state_vec = jnp.concatenate([data.qpos, data.qvel])
    goal_state = jnp.concatenate([task.goal, jnp.zeros((2,), jnp.float32)])
    info = {"task": task, "goal_obs": self._obs(goal_state, task), "goal_state": goal_state,
            "state": state_vec, "steps": jnp.zeros((), jnp.int32)}
    reward, metrics = self._score(state_vec, task)
    return base.State(pipeline_state=data, obs=self._obs(state_vec, task), reward=reward,
                      done=jnp.zeros(()), metrics=metrics, info=info)

  def step(self, state, action):
    action = jnp.clip(self.check_action(action), -1.0, 1.0)
    task = state.info["task"]
    self._check_task(task)
    data = self._physics(self.model_for(task), task.walls, state.pipeline_state, action)
    state_vec = jnp.concatenate([data.qpos, data.qvel])
    reward, metrics = self._score(state_vec, task)
    info = dict(state.info, state=state_vec, steps=state.info["steps"] + 1)
    return state.replace(pipeline_state=data, obs=self._obs(state_vec, task), reward=reward,
                         metrics=metrics, info=info)

  def explore_action(self, key, state, prev_action):
    """Random actions with momentum: a = clip(m * prev + sqrt(1 - m^2) * N(0, 1), -1, 1)."""
    del state
    m = self.explore_momentum
    noise = jax.random.normal(key, (self.action_size,))
    return jnp.clip(m * prev_action + np.sqrt(1.0 - m * m) * noise, -1.0, 1.0)

  def simulate(self, state, actions):
    """Physics only (no rendering): the states f32[T, 4] after each of `actions` f32[T, 2] from `state`."""
    task = state.info["task"]
    model = self.model_for(task)

    def body(d, a):
      d = self._physics(model, task.walls, d, jnp.clip(a, -1.0, 1.0))
      return d, jnp.concatenate([d.qpos, d.qvel])

    return jax.lax.scan(body, state.pipeline_state, actions)[1]

  def _physics(self, model, walls, data, action):
    """One control step of MJX physics: qvel clipped to +-MAX_SPEED, ctrl = action, FRAME_SKIP substeps."""
    data = data.replace(qvel=jnp.clip(data.qvel, -MAX_SPEED, MAX_SPEED), ctrl=action)

    def substep(d, _):
      m = model.replace(geom_pos=self._wall_positions(walls, d.qpos, model.geom_pos))
      return mjx.step(m, d), None

    return jax.lax.scan(substep, data, None, length=FRAME_SKIP)[0]

  def model_for(self, task):
    """The MJX model with the task's mass, damping and friction scales applied.

    The ball's inverse weights (which set the contacts' softness) scale with 1 / mass, as `mj_setConst`
    would recompute them: its two slide dofs are all of its mass matrix."""
    mx = self._mx
    body = jnp.zeros((mx.nbody,), jnp.float32).at[self._ball_body].set(1.0)
    mass_mult = 1.0 + body * (task.mass_scale - 1.0)
    return mx.replace(body_mass=mx.body_mass * mass_mult,
                      body_inertia=mx.body_inertia * mass_mult[:, None],
                      body_invweight0=mx.body_invweight0 / mass_mult[:, None],
                      dof_invweight0=mx.dof_invweight0 / task.mass_scale,
                      dof_damping=mx.dof_damping * task.damping_scale,
                      geom_friction=mx.geom_friction * task.friction_scale)

  def mj_model_for(self, task):
    """A plain MuJoCo (C) `MjModel` of `task` (cross-checks): a box on every wall cell of its layout (the MJX
    model moves nine boxes around instead) and the task's mass, damping and friction scales."""
    self._check_task(task)
    centres = np.asarray(self.cell_centre(np.flatnonzero(np.asarray(task.walls, bool))))
    mj = mujoco.MjModel.from_xml_string(_model_xml(centres))
    ball = mj.body("ball").id
    mj.body_mass[ball] *= float(task.mass_scale)
    mj.body_inertia[ball] *= float(task.mass_scale)
    mj.dof_damping[:] *= float(task.damping_scale)
    mj.geom_friction[:] *= float(task.friction_scale)
    mujoco.mj_setConst(mj, mujoco.MjData(mj))
    return mj

  def mj_control_step(self, mj, md, action):
    """One control step of the plain MuJoCo model (the same velocity clip, ctrl and substeps as `step`);
    mutates `md`."""
    md.qvel[:] = np.clip(md.qvel, -MAX_SPEED, MAX_SPEED)
    md.ctrl[:] = np.clip(action, -1.0, 1.0)
    mujoco.mj_step(mj, md, nstep=FRAME_SKIP)

  def mj_set_state(self, md, state_vec):
    """qpos = ball xy, qvel = its velocity."""
    md.qpos[:], md.qvel[:] = state_vec[:2], state_vec[2:4]

  def mj_get_state(self, md):
    return np.concatenate([md.qpos, md.qvel])

  def goal_cost(self, state_vec, goal_state):
    """Squared distance of the ball to the goal in units of the success radius: f32[...] (< 1 inside it)."""
    return jnp.sum(jnp.square(state_vec[..., :2] - goal_state[..., :2]), -1) / SUCCESS_DISTANCE ** 2

  def cross_check(self, task, actions, vel=(0.0, 0.0)):
    """Steps MJX (this env's physics, jitted) and plain MuJoCo C from the same state with the same actions.

    Args:
      task: MazeTask of one episode (unbatched); the ball starts at `task.start`.
      actions: f32[T, 2].
      vel: f32[2] initial velocity.

    Returns:
      dict of numpy arrays: 'mjx' f32[T + 1, 4] and 'c' f64[T + 1, 4] states (x, y, vx, vy) from the start,
      'error' f64[T + 1] distance between their positions (cell units), 'step_error' f64[T + 1] the same
      after one step of MuJoCo C from MJX's previous state (the local error, without the drift that the
      open-loop error accumulates), 'contacts' i32[T + 1] MuJoCo C contacts at the last substep of each step
      (0 at the start).
    """
    actions = np.asarray(actions, np.float32)
    start, vel = np.asarray(task.start, np.float32), np.asarray(vel, np.float32)
    sim = _mjx_rollout(self, task, jnp.asarray(vel), jnp.asarray(actions))
    mjx_states = np.concatenate([np.concatenate([start, vel])[None], np.asarray(sim)])
    mj = self.mj_model_for(task)
    md = mujoco.MjData(mj)
    md.qpos[:], md.qvel[:] = start, vel
    local = mujoco.MjData(mj)
    c_states, local_xy, contacts = [np.concatenate([md.qpos, md.qvel])], [start], [0]
    for a, s in zip(actions, mjx_states):
      self.mj_control_step(mj, md, a)
      c_states.append(np.concatenate([md.qpos, md.qvel]))
      contacts.append(md.ncon)
      local.qpos[:], local.qvel[:] = s[:2], s[2:]
      self.mj_control_step(mj, local, a)
      local_xy.append(local.qpos.copy())
    c_states = np.stack(c_states)
    return {"mjx": mjx_states, "c": c_states, "contacts": np.asarray(contacts, np.int32),
            "error": np.linalg.norm(mjx_states[:, :2] - c_states[:, :2], axis=-1),
            "step_error": np.linalg.norm(mjx_states[:, :2] - np.stack(local_xy), axis=-1)}

  def _wall_positions(self, walls, xy, geom_pos):
    """geom_pos with the nine wall boxes on the walls around the ball's cell (others parked)."""
    rows, cols = self.grid_shape
    r, c = self.cell_of(xy)
    nr, nc = r + self._offsets[:, 0], c + self._offsets[:, 1]
    inside = (nr >= 0) & (nr < rows) & (nc >= 0) & (nc < cols)
    is_wall = jnp.where(inside, walls[jnp.clip(nr, 0, rows - 1), jnp.clip(nc, 0, cols - 1)], True)
    centre = jnp.stack([nc + 0.5, rows - nr - 0.5, jnp.zeros_like(nr)], -1).astype(jnp.float32)
    return geom_pos.at[self._wall_geoms].set(jnp.where(is_wall[:, None], centre, self._park))

  def _score(self, state_vec, task):
    dist = jnp.linalg.norm(state_vec[:2] - task.goal)
    return -dist, {"success": (dist < SUCCESS_DISTANCE).astype(jnp.float32), "distance": dist}

  def _obs(self, state_vec, task):
    return {"pixels": self.render(state_vec, task), "proprio": jnp.asarray(state_vec, jnp.float32)}

  def render(self, state_vec, task):
    """Top-down image of the maze with the ball at `state_vec[:2]`.

    Args:
      state_vec: f32[4] (x, y, vx, vy); only the position is drawn.
      task: MazeTask (walls, colours, goal for the optional marker).

    Returns:
      uint8[H, H, 3].
    """
    self._check_task(task)
    walls = jnp.asarray(task.walls, bool)
    is_wall = jnp.where(self._nb_in, walls[self._nb_r, self._nb_c], True)               # [9, H, W]
    # Wall cells tile the plane without overlap, so the union's coverage is the sum of per-cell coverages
    # (each the product of the per-axis pixel overlaps); a min over cell SDFs would leave seams between
    # neighbouring wall cells.
    overlap = jnp.clip((0.5 - jnp.abs(self._px[None] - self._nb_centre)) / self._pixel_size + 0.5, 0.0, 1.0)
    wall_cov = jnp.clip(jnp.sum(jnp.where(is_wall, overlap[..., 0] * overlap[..., 1], 0.0), axis=0), 0, 1)
    colours = task.colours
    canvas = jnp.broadcast_to(colours["background"], self._px.shape[:2] + (3,))
    canvas = render.paint(canvas, wall_cov, colours["wall"])
    if self.show_goal:
      goal_cov = render.coverage(render.disc_sdf(self._px, task.goal, RENDER_RADIUS), self._pixel_size)
      canvas = render.paint(canvas, goal_cov, colours["goal"])
    agent_cov = render.coverage(render.disc_sdf(self._px, state_vec[:2], RENDER_RADIUS), self._pixel_size)
    canvas = render.paint(canvas, agent_cov, colours["agent"])
    return render.to_uint8(canvas)

  def agent_mask(self, state_vec):
    """bool[H, W]: pixels the ball touches (any coverage) when drawn at `state_vec[:2]`."""
    return render.coverage(render.disc_sdf(self._px, state_vec[:2], RENDER_RADIUS), self._pixel_size) > 0


@functools.partial(jax.jit, static_argnums=0)
def _mjx_rollout(env, task, vel, actions):
  """f32[T, 4]: `env.simulate` from `task.start` with velocity `vel` f32[2] (the cross-check's MJX side)."""
  state = env.reset_to(jax.random.key(0), task)
  return env.simulate(state.replace(pipeline_state=state.pipeline_state.replace(qvel=vel)), actions)


CROSS_CHECK_SCENARIOS = ("free", "slide", "corner")
_CROSS_PERIOD = 20      # env steps per period of the scenarios' oscillating actions


def cross_check_scenarios(walls, steps, seed=0):
  """Starts and actions of the physics cross-check in a layout, placed from its geometry (default dynamics).

  free: a loop within 0.15 of a free cell's centre, touching no wall.
  slide: pressed into a straight wall of two boxes (action 1 into it) while sliding +-0.3 along it, across
    the joint of the boxes.
  corner: action (n1 + 0.5 n2) (0.3 + 0.7 cos) for the normals n1, n2 of an inner corner's walls: driven into
    the corner, pulled out and driven in again every `_CROSS_PERIOD` steps.

  Args:
    walls: bool[R, C] wall mask.
    steps: T, env steps per scenario.
    seed: picks each scenario's place among the layout's candidates.

  Returns:
    dict name -> (start f32[2], actions f32[T, 2]), names as in CROSS_CHECK_SCENARIOS.

  Raises:
    ValueError: if the layout has no straight two-box wall or no inner corner.
  """
  walls = np.asarray(walls, bool)
  rows, cols = walls.shape
  free = [(r, c) for r in range(rows) for c in range(cols) if not walls[r, c]]

  def centre(r, c):
    return np.array([c + 0.5, rows - r - 0.5], np.float32)

  def wall(r, c, d):        # is the neighbour of cell (r, c) in world direction d (dx, dy) a wall?
    nr, nc = r - int(d[1]), c + int(d[0])
    return not (0 <= nr < rows and 0 <= nc < cols) or bool(walls[nr, nc])

  slides, corners = [], []  # (cell, wall normal n, tangent t or second normal m)
  for r, c in free:
    for n in (np.array(d, np.float32) for d in ((0, -1), (0, 1), (-1, 0), (1, 0))):
      t = np.abs(n[::-1])
      if wall(r, c, n) and not wall(r, c, t) and wall(r - int(t[1]), c + int(t[0]), n):
        slides.append(((r, c), n, t))
      corners += [((r, c), n, m) for m in (t, -t) if wall(r, c, n) and wall(r, c, m)]
  if not slides or not corners:
    raise ValueError("The cross-check needs a layout with a straight wall two boxes long and an inner "
                     f"corner; got\n{mazes.to_string(walls)}")
  rng = np.random.default_rng(seed)
  (cell, n, t), (corner, n2, m) = slides[rng.integers(len(slides))], corners[rng.integers(len(corners))]

  # A cos forcing of amplitude A (held over each env step, sampled at its middle) moves the free ball by
  # A * accel / w^2 * (1 - cos w t), w in rad/s: the amplitudes below are displacements in cells.
  k = np.arange(steps) + 0.5
  omega = 2 * np.pi / _CROSS_PERIOD
  w2 = (omega / (FRAME_SKIP * TIMESTEP)) ** 2
  accel = MOTOR_GEAR / (BALL_DENSITY * 4.0 / 3.0 * np.pi * BALL_RADIUS ** 3)   # per unit action
  loop = 0.15 * w2 / accel * np.stack([np.cos(omega * k), np.cos(2 * omega * k)], -1)
  joint = centre(*cell) + 0.5 * t + (0.5 - BALL_RADIUS - 0.05) * n                # by the joint of 2 boxes
  slide = n + np.outer(0.3 * w2 / accel * np.cos(omega * k), t)
  drive = (0.3 + 0.7 * np.cos(omega * (k - 0.5)))[:, None] * (n2 + 0.5 * m)
  scenarios = {"free": (centre(*free[rng.integers(len(free))]) - [0.15, 0.0], loop),
               "slide": (joint - 0.3 * t, slide),
               "corner": (centre(*corner) - 0.25 * (n2 + m), drive)}
  return {name: (np.asarray(s, np.float32), np.clip(a, -1.0, 1.0).astype(np.float32))
          for name, (s, a) in scenarios.items()}


PRESETS = {
    "pointmaze_umaze": dict(layouts="umaze", goal_rule="bfs", goal_band="near", jitter=0.25,
                            init_vel_std=0.1),
    "pointmaze_medium": dict(layouts="medium", goal_rule="euclid", min_goal_distance=3.0, jitter=0.25,
                             init_vel_std=0.1),
    "pointmaze_large": dict(layouts="large", goal_rule="euclid", min_goal_distance=3.0, jitter=0.25,
                            init_vel_std=0.1),
    "pointmaze_diverse": dict(layouts="train", goal_rule="bfs", goal_band="near", jitter=0.1,
                              init_vel_std=0.0),
}


def constructor(name):
  """The constructor of the preset task `name` (a key of `PRESETS`), as `envs.registry` registers it."""
  def make(**kwargs):
    return PointMaze(**{**PRESETS[name], **kwargs})
  make.__name__ = f"make_{name}"
  make.__doc__ = f"Builds {name}: PointMaze with defaults {PRESETS[name]} (kwargs override)."
  return make
