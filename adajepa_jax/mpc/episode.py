"""One MPC episode = one `lax.scan` over replans, for any `PlanningModel` (frozen, adaptive, or the true
simulator of `mpc.oracle`: the same program).

Per replan:  the model's plan cost (`PlanningModel.planning`) -> plan (CEM/GD/MPPI) -> execute the first chunk
in MJX (frameskip env steps) -> observe (`PlanningModel.observe`). For the latent world model
(`world_model_planner`): encode context + goal with the current params, plan over latent rollouts, then add
the newest transition (with its context) to the buffer -> `adapt_step` (skipped entirely when adaptation is
off) -> slide the context window.

Real frames are the predictor's context (up to `history` frames, left-padded and masked at the start).
Each episode owns its adapted params, optimiser state and buffer, so `jax.vmap(episode)` runs many at once.

While the encoder trunk is frozen (adaptation off, or a spec that leaves it alone, like the default
`predlast+enclast`), context, goal and buffer hold each frame's trunk features (`wm.features`), computed once
when the frame is observed: re-encoding them is then only the head, and the adaptation step's loss and
backward pass never touch the convolutions. Specs that adapt the trunk (`encfirst`, `all`) keep pixels.

A program may hold several shift conditions that build the same env (e.g. clean, blur, low_mass): each
episode runs under the one its `condition` index names (`lax.switch`; under vmap every branch's visual shift
is computed and the episode's selected), so one compiled program evaluates a batch mixing them.

Example:
  program = make_episode(env, wm, cfg, [shifts.get("clean"), shifts.get("blur")])
  run = jax.jit(jax.vmap(program.run, in_axes=(None, 0, None, 0)))
  result = run(params, keys, None, condition_ids)   # keys: (E,) typed keys; condition_ids: int32[E]
"""
import dataclasses
from typing import Any, Callable, Optional, Sequence, Union

import chex
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import struct

from adajepa_jax import adaptation, planning
from adajepa_jax.envs import base as envs_base
from adajepa_jax.envs import shifts as shifts_lib
from adajepa_jax.errors import UsageError
from adajepa_jax.models import WorldModel
from adajepa_jax.planning import objectives

Frame = dict   # one frame as the context holds it: {'features': f32[N, F] | 'pixels': uint8[H, W, 3], 'proprio'}
Conditions = Union[str, shifts_lib.Condition, Sequence[Union[str, shifts_lib.Condition]], None]


@struct.dataclass
class Context:
  """The last `history` real frames and the action chunks between them (left-padded at the start).

  obs: {'features': f32[h, N, F] (or 'pixels': uint8[h, H, W, 3] when the trunk adapts), 'proprio': f32[h, P]};
  actions: f32[h-1, A]; valid: bool[h].
  """
  obs: Frame
  actions: jax.Array
  valid: jax.Array


@struct.dataclass
class ModelState:
  """What the latent world model keeps during an episode (`world_model_planner`): its (adapted) params, the
  adaptation's optimiser state, buffer and setting (learning rates, steps; None when adaptation is off), the
  context and the goal frame; with `adapt.guard`, the unadapted params and both params' summed errors."""
  params: optax.Params
  opt_state: Optional[optax.OptState]
  buffer: Optional[adaptation.Buffer]
  context: Context
  goal: Frame               # leading axis K when `plan.goal_draws` = K > 1 (the goal latent is their mean)
  setting: Optional[adaptation.AdaptSetting] = None
  base: Optional[optax.Params] = None     # `adapt.guard`: the unadapted params (those the run started from)
  guard_error: Optional[jax.Array] = None  # f32[2]: summed one-step errors of the adapted / unadapted params


@struct.dataclass
class Carry:
  """The replan scan's state (one episode)."""
  env_state: envs_base.State
  model: Any                # the planning model's state (`PlanningModel.init`): ModelState for the world model
  plan: jax.Array           # f32[H, A], warm start for the next replan
  goal_pixels: jax.Array    # uint8[H, W, 3], the (possibly corrupted) goal image, fixed per episode
  condition: jax.Array      # int32[], index of the episode's condition in the program's `conditions`
  first_pixels: Optional[jax.Array]   # uint8[H, W, 3] the first observed frame (None unless frames are recorded)
  success_any: jax.Array    # bool[]
  key: chex.PRNGKey


@dataclasses.dataclass(frozen=True)
class PlanningModel:
  """What an MPC episode plans with: the state it keeps from observations, and the cost of plans.

  `make_episode` runs any planning model; the latent world model (`world_model_planner`, adaptation included)
  and the true simulator (`mpc.oracle.simulator_model`, the planning ceiling) are the two here.

  init(params, key, obs0, goal_obs, setting=None) -> state: the model's state (a pytree) at the start of an
    episode, from the first (shifted) observation and the (shifted) goal observation {'pixels', 'proprio'}
    (with `plan.goal_draws` = K > 1: K draws of the shift, stacked on a leading axis);
    `key` is its own; `setting` an `adaptation.AdaptSetting` of scalars (None: the config's; models that do
    not adapt ignore it).
  planning(state, env_state, replan_idx) -> (cost_fn, describe): cost_fn(plans f32[S, H, A]) -> f32[S], and
    describe(plan f32[H, A]) -> (dict of f32[] diagnostics of the chosen plan (plan_visual_cost,
    plan_proprio_cost), plan_latents f32[H, N, D] or None). `env_state` is the true state (the simulator's
    only input; the world model ignores it).
  observe(state, new_obs, chunk) -> (state, dict of f32[]): takes the observation after an executed chunk
    (the world model adds it to its context and buffer and adapts), with its per-replan metrics
    (pred_error_before, pred_error_after, adapt_loss, skipped; under `adapt.guard` also pred_error_unadapted
    (the unadapted params' error on the same transition) and planned_adapted (1: this replan's plan was made
    with the adapted params)).
  gradients: whether the cost is differentiable (GD plans need it).
  """
  init: Callable[..., Any]
  planning: Callable[..., tuple[Callable, Callable]]
  observe: Callable[..., tuple[Any, dict]]
  gradients: bool = True


@struct.dataclass
class ReplanOutput:
  """What one replan emits; the episode's scan stacks them (leading axis R).

  metrics: dict of f32[] (the `per_replan` entries of `EpisodeResult`); state: f32[S] the true state after the
  executed chunk; pixels: uint8[H, W, 3] the frame observed after it; plan_latents: f32[Hp, N, D] the latents
  the model predicted for the chosen plan (both None unless frames are recorded).
  """
  metrics: dict[str, jax.Array]
  state: jax.Array
  pixels: Optional[jax.Array]
  plan_latents: Optional[jax.Array] = None


@struct.dataclass
class EpisodeResult:
  """Outputs of one episode (leading axes added by vmap).

  success_any: bool[] reached at any chunk within the budget; success_final: bool[] at the last step;
  per_replan: dict of f32[R] (success, plan_cost and its plan_visual_cost / plan_proprio_cost terms,
    pred_error_before/after (the one-step loss on the executed chunk), adapt_loss, skipped, env metrics);
  states: f32[R+1, S] true states (diagnostics, trajectory plots); goal_state: f32[S];
  frames: uint8[R+1, H, W, 3] observed frames (None unless recorded); goal_pixels: uint8[H, W, 3] as planned to;
  plan_latents: f32[R, Hp, N, D] the latents predicted for each replan's chosen plan, with the params of that
    replan (None unless frames are recorded; a decoder turns them into pictures: `training.decoder`);
  task: the episode's task pytree (shape, layout, dynamics scales, colours) after the condition's transform;
  condition: int32[] the condition's index in the program's `conditions`.
  """
  success_any: jax.Array
  success_final: jax.Array
  per_replan: dict[str, jax.Array]
  states: jax.Array
  goal_state: jax.Array
  frames: Optional[jax.Array]
  goal_pixels: jax.Array
  task: Any
  condition: jax.Array
  plan_latents: Optional[jax.Array] = None


@dataclasses.dataclass(frozen=True)
class EpisodeProgram:
  """The pieces of one episode. `run` is the whole episode as one scan; `init`/`replan`/`finish` are its
  building blocks (the benchmark's one-episode-at-a-time reference loop jits and calls them from Python).

  init(params, key, task=None, condition=0, setting=0) -> Carry;  replan(carry, replan_idx) -> (Carry, ReplanOutput);
  finish(first_carry, final_carry, stacked ReplanOutput) -> EpisodeResult;
  play(first_carry) -> (final Carry, EpisodeResult): the replan scan from a carry (`make_continual` starts it
    from a carry holding an earlier episode's adapted model);
  run(params, key, task=None, condition=0, setting=0) -> EpisodeResult (= play(init(...))[1]);
  conditions: the program's shift conditions (`condition` indexes them); `setting` indexes the program's
  grid of adaptation settings (`make_episode(settings=...)`).
  """
  init: Callable[..., Carry]
  replan: Callable[[Carry, jax.Array], tuple[Carry, ReplanOutput]]
  finish: Callable[[Carry, Carry, ReplanOutput], EpisodeResult]
  play: Callable[[Carry], tuple[Carry, EpisodeResult]]
  run: Callable[..., EpisodeResult]
  conditions: tuple[shifts_lib.Condition, ...]
  num_settings: int = 1


def _window(context, new_obs, chunk):
  """The newest transition as a training window (the loader's batch structure, unbatched; 'features' may
  stand for 'pixels'): the context, the new frame, and `target_mask` bool[h] selecting only the last
  one-step prediction (context -> new frame). Consecutive windows overlap, so each buffer slot is one
  transition, and the buffer's slot weights (`cfg.adapt.buffer_weighting`) set how the loss weighs them:
  `uniform` counts each once (recent-5: the newest weighs 1/5); `merged` weighs them as the authors' merged
  sequence does (recent-5, history 3: 1, 2, 3, 2, 1 out of 9, oldest to newest; the newest weighs 1/9)."""
  obs = jax.tree.map(lambda c, n: jnp.concatenate([c, n[None]], 0), context.obs, new_obs)
  hist = context.valid.shape[0]
  return dict(obs, actions=jnp.concatenate([context.actions, chunk[None]], 0),
              valid=jnp.concatenate([context.valid, jnp.ones((1,), bool)], 0),
              target_mask=jnp.arange(hist) == hist - 1)


def _slide(context, new_obs, chunk):
  """Drops the oldest context frame and appends the new one."""
  obs = jax.tree.map(lambda c, n: jnp.concatenate([c[1:], n[None]], 0), context.obs, new_obs)
  actions = jnp.concatenate([context.actions[1:], chunk[None]], 0)
  valid = jnp.concatenate([context.valid[1:], jnp.ones((1,), bool)], 0)
  return Context(obs=obs, actions=actions, valid=valid)


def check_goal_draws(value) -> int:
  """`plan.goal_draws` as an int >= 1; anything else raises UsageError naming the value."""
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise UsageError(f"plan.goal_draws={value!r}: expected an integer >= 1 (1: the paper's one shifted goal "
                     "image; K > 1: the goal latent is the mean over K independent draws of the visual shift)")
  return value


def world_model_planner(wm: WorldModel, cfg: ml_collections.ConfigDict, action_size: int,
                        max_steps: Optional[int] = None, buffer_slots: Optional[int] = None,
                        rescore: bool = False) -> PlanningModel:
  """The latent world model as a `PlanningModel`, adapting online when `cfg.adapt.enabled`.

  Args:
    wm: the `WorldModel` from `models.make_world_model`.
    cfg: the full config (data.frameskip / history, plan, adapt, train (adaptation learning rates) and
      eval.replans (the unbounded buffer's size) are read; all static).
    action_size: the env's action size (one env step); plans act in chunks of frameskip env steps.
    max_steps: when episodes carry their own settings (`init(..., setting=...)`), the static number of
      adaptation steps scanned per replan, the settings' steps masking the rest. None: the config's
      settings, all static.
    buffer_slots, rescore: when episodes carry their own buffer rules, the static number of slots (the
      largest rule's) and whether any rule is `hard` (buffer scores are then refreshed at every replan).
      None: the config's buffer.
  """
  hist, act_dim = cfg.data.history, action_size * cfg.data.frameskip
  horizon, goal_draws = cfg.plan.horizon, check_goal_draws(cfg.plan.goal_draws)
  # The adaptation wiring depends only on the param tree's structure (the world model's, plus LoRA adapters
  # when the spec asks), so it is resolved here, once, from its shapes. Unknown specs fail here too.
  adapt_on = bool(cfg.adapt.enabled)
  guard = adapt_on and bool(cfg.adapt.guard)
  if adapt_on:
    param_shapes = jax.eval_shape(lambda k: adaptation.add_adapters(cfg, wm.init(k), k), jax.random.key(0))
    labels = adaptation.resolve(cfg.adapt.spec, param_shapes)
    optimizer = adaptation.make_adapt_optimizer(labels, *adaptation.learning_rates(cfg), cfg.adapt.optimizer)
    adaptation.check_buffer(cfg.adapt.buffer, cfg.adapt.buffer_weighting)
    if buffer_slots is None:
      buffer_size = adaptation.buffer_size(cfg.adapt.buffer, cfg.adapt.buffer_size, cfg.eval.replans)
      rescore = cfg.adapt.buffer == "hard"
    else:
      buffer_size = int(buffer_slots)
  # Frames are kept as trunk features unless the spec adapts the trunk.
  cache_features = not (adapt_on and adaptation.adapts_encoder_trunk(labels))

  def frame(params, obs):
    """An observation as the context holds it: its trunk features (`cache_features`) or its pixels."""
    if cache_features:
      return {"features": wm.features(params, obs["pixels"]), "proprio": obs["proprio"]}
    return {"pixels": obs["pixels"], "proprio": obs["proprio"]}

  def pred_error(params, window):
    """The one-step loss of a window's newest transition (scores hard-N; the before/after-update metrics)."""
    return adaptation.window_losses(params, jax.tree.map(lambda x: x[None], window), wm.loss)[0]

  def init(params, key, obs0, goal_obs, setting=None):
    if setting is not None and max_steps is None:
      raise ValueError("world_model_planner: per-episode settings need a static max_steps")
    if adapt_on:
      params = adaptation.add_adapters(cfg, params, key)
      if jax.tree.structure(params) != jax.tree.structure(param_shapes):
        raise ValueError("make_episode: params do not have the structure of wm.init's params (plus LoRA "
                         f"adapters for a 'lora' spec): top-level keys {sorted(params)}")
    frame0 = frame(params, obs0)
    context = Context(
        obs=jax.tree.map(lambda x: jnp.broadcast_to(x, (hist,) + x.shape), frame0),
        actions=jnp.zeros((hist - 1, act_dim)),
        valid=jnp.arange(hist) == hist - 1)
    if adapt_on:
      buffer = adaptation.buffer_init(_window(context, frame0, jnp.zeros((act_dim,))), buffer_size)
      opt_state = optimizer.init(params)
    else:
      buffer, opt_state = None, None
    guarded = dict(base=params, guard_error=jnp.zeros(2)) if guard else {}
    return ModelState(params=params, opt_state=opt_state, buffer=buffer, context=context,
                      goal=frame(params, goal_obs), setting=setting if adapt_on else None, **guarded)

  def use_adapted(state):
    """`adapt.guard`: whether the adapted params have predicted the episode's transitions (each scored before
    the params adapted on it) better in sum than the unadapted params (a tie, as at the start, keeps these)."""
    return state.guard_error[0] < state.guard_error[1]

  def planning_params(state):
    """The params the plan is made with: the adapted ones, or under the guard the better predictor so far
    (only adapted leaves are selected, so frozen ones stay shared under vmap)."""
    if not guard:
      return state.params
    adapted, frozen = adaptation.partition(state.params, labels)
    base = adaptation.partition(state.base, labels)[0]
    pick = use_adapted(state)
    return adaptation.combine(jax.tree.map(lambda a, b: jnp.where(pick, a, b), adapted, base), frozen)

  def planning(state, env_state, replan_idx):
    del env_state
    params, ctx = planning_params(state), state.context
    z_ctx = wm.encode(params, ctx.obs)                                    # [h, N, D]
    z_goal = wm.encode(params, state.goal)                                # [N, D] ([K, N, D]: K draws)
    if goal_draws > 1:
      z_goal = z_goal.mean(0)
    weights = objectives.horizon_weights(cfg.plan.objective, horizon, replan_idx, cfg.plan.staged_switch)

    def cost_fn(plans):                                                   # [S, H, A] -> [S]
      z_pred = jax.vmap(lambda p: wm.rollout(params, z_ctx, ctx.actions, p, ctx.valid))(plans)
      return objectives.latent_cost(z_pred, z_goal, weights, wm.visual_dim, cfg.plan.proprio_weight)

    def describe(plan):
      """The chosen plan's cost split into its visual and proprio terms, and its predicted latents."""
      z_plan = wm.rollout(params, z_ctx, ctx.actions, plan, ctx.valid)[None]
      visual_cost = objectives.latent_cost(z_plan, z_goal, weights, wm.visual_dim, 0.0)[0]
      proprio_cost = objectives.latent_cost(z_plan, z_goal, weights, wm.visual_dim,
                                            cfg.plan.proprio_weight)[0] - visual_cost
      return {"plan_visual_cost": visual_cost, "plan_proprio_cost": proprio_cost}, z_plan[0]

    return cost_fn, describe

  def observe(state, new_obs, chunk):
    params, ctx = state.params, state.context
    new_frame = frame(params, new_obs)
    window = _window(ctx, new_frame, chunk)
    err_before = pred_error(params, window)
    metrics = {"pred_error_before": err_before}
    if guard:   # the newest transition is held out for both params: neither has adapted on it yet
      err_base = pred_error(state.base, window)
      metrics.update(pred_error_unadapted=err_base, planned_adapted=use_adapted(state).astype(jnp.float32))
      state = state.replace(guard_error=state.guard_error + jnp.stack([err_before, err_base]))
    buffer, opt_state = state.buffer, state.opt_state
    if adapt_on:
      if rescore:   # hard-N keeps the transitions the current params predict worst
        buffer = adaptation.buffer_rescore(buffer, adaptation.window_losses(params, buffer.windows, wm.loss))
      if state.setting is None or state.setting.buffer is None:   # the config's buffer, static
        buffer = adaptation.buffer_add(buffer, window, err_before, cfg.adapt.buffer, cfg.adapt.buffer_weighting)
      else:                                                      # the episode's own rule
        buffer = adaptation.buffer_add(buffer, window, err_before, state.setting.buffer)
      if state.setting is None:   # the config's settings, static
        opt, steps = optimizer, cfg.adapt.steps
      else:                       # the episode's own: traced learning rates and step count
        opt = adaptation.make_adapt_optimizer(labels, state.setting.lr_predictor, state.setting.lr_encoder,
                                              cfg.adapt.optimizer)
        steps = state.setting.steps
      params, opt_state, adapt_metrics = adaptation.adapt_step(
          params, opt_state, buffer, loss_fn=wm.loss, optimizer=opt, labels=labels,
          steps=steps, reset=cfg.adapt.reset_optimizer, max_steps=None if state.setting is None else max_steps,
          update_mask=None if state.setting is None else state.setting.mask)
      metrics["pred_error_after"] = pred_error(params, window)
      metrics["adapt_loss"] = adapt_metrics["loss_before"]
      metrics["skipped"] = adapt_metrics["skipped"].astype(jnp.float32)
    else:
      metrics["pred_error_after"] = err_before
      metrics["adapt_loss"] = jnp.zeros(())
      metrics["skipped"] = jnp.zeros(())
    state = state.replace(params=params, opt_state=opt_state, buffer=buffer,
                          context=_slide(ctx, new_frame, chunk))
    return state, metrics

  return PlanningModel(init=init, planning=planning, observe=observe)


def make_episode(env: envs_base.TaskEnv, model: Union[WorldModel, PlanningModel], cfg: ml_collections.ConfigDict,
                 conditions: Conditions = None, record_frames: bool = True,
                 settings: Optional[Sequence[dict]] = None) -> EpisodeProgram:
  """Builds the episode program; `program.run(params, key)` is a pure function of the params and a key.

  Args:
    env: a `TaskEnv` (already built with the conditions' env kwargs, e.g. the unseen shape set).
    model: what plans: a `WorldModel` (from `models.make_world_model`; wrapped by `world_model_planner`, which
      adapts it when `cfg.adapt.enabled`) or any `PlanningModel` (e.g. `mpc.oracle.simulator_model`).
    cfg: the full config (sections data, plan, adapt, train (adaptation learning rates), eval are read; all
      static).
    conditions: a `shifts.Condition` or registered name (visual corruption + task transform), or a sequence
      of them with equal env kwargs (`shifts.same_env`); None means `clean`.
    record_frames: keep the observed frames (for GIFs) and the chosen plans' predicted latents in the
      result; off saves memory in big sweeps.
    settings: a grid of adaptation settings as data ([{lr_predictor, lr_encoder, steps[, spec][, buffer,
      buffer_size, buffer_weighting]}], see
      `adaptation.setting_of`; needs an adapting `WorldModel`): `run(..., setting=i)` runs the episode with
      settings[i] (a traced index, like `condition`), so one compiled program evaluates the whole grid. With
      specs (in every setting), the program adapts their union and each episode masks the updates of the
      layers its spec keeps. With buffers (in every setting), each episode's buffer follows its own policy
      and weighting within one buffer of the largest size. None: the config's settings.
  """
  conditions = shifts_lib.same_env(conditions if conditions is not None else "clean")
  goal_draws = check_goal_draws(cfg.plan.goal_draws)
  table = None
  if settings is not None:
    if not (isinstance(model, WorldModel) and cfg.adapt.enabled):
      raise ValueError("settings (a grid of adaptation settings) need an adapting world model: pass a WorldModel "
                       "and a config with adapt.enabled (build.mode_config(config, '<spec>'))")
    union = adaptation.union_spec(settings)
    if union is not None:   # per-episode layer sets: the program adapts their union, each episode masks it
      cfg = ml_collections.ConfigDict(cfg.to_dict())
      cfg.adapt.spec = union
    shapes = jax.eval_shape(lambda k: adaptation.add_adapters(cfg, model.init(k), k), jax.random.key(0))
    table = adaptation.settings_table(settings, shapes, cfg.eval.replans)
  if isinstance(model, WorldModel):
    grid_buffer = settings is not None and table.buffer is not None
    model = world_model_planner(
        model, cfg, env.action_size, max_steps=None if table is None else max(int(st["steps"]) for st in settings),
        buffer_slots=adaptation.buffer_slots(settings, cfg.eval.replans) if grid_buffer else None,
        rescore=grid_buffer and any(st["buffer"] == "hard" for st in settings))
  fs, horizon, replans = cfg.data.frameskip, cfg.plan.horizon, cfg.eval.replans
  env_a = env.action_size
  act_dim = env_a * fs
  if cfg.plan.planner == "gd" and not model.gradients:
    raise ValueError("this planning model gives no gradients: plan with 'cem' or 'mppi', not 'gd'")
  planner = planning.get_planner(cfg.plan.planner)
  planner_cfg = cfg.plan[cfg.plan.planner]

  def shift(method, index, *args):
    """conditions[index].<method>(*args) for a traced index."""
    fns = [getattr(c, method) for c in conditions]
    return fns[0](*args) if len(fns) == 1 else jax.lax.switch(index, fns, *args)

  def init(params, key, task=None, condition=0, setting=0):
    """The scan carry at the start of an episode (resets the env, fills the context with o_0)."""
    k_task, k_reset, k_goal, k_obs, k_model, k_run = jax.random.split(key, 6)
    condition = jnp.asarray(condition, jnp.int32)
    if task is None:
      task = env.sample_task(k_task)
    task = shift("apply_task", condition, task)
    env_state = env.reset_to(k_reset, task)
    obs0 = shift("apply_obs", condition, env_state.obs, k_obs)
    goal_pixels, goal_proprio = env_state.info["goal_obs"]["pixels"], env_state.info["goal_obs"]["proprio"]
    if goal_draws == 1:
      goal_pixels = shift("apply_pixels", condition, goal_pixels, k_goal)
      goal_obs = {"pixels": goal_pixels, "proprio": goal_proprio}
    else:   # `plan.goal_draws` independent draws of the shift, stacked: [K, H, W, 3]; the record keeps the first
      draws = jax.vmap(lambda k: shift("apply_pixels", condition, goal_pixels, k))(
          jax.random.split(k_goal, goal_draws))
      goal_obs = {"pixels": draws, "proprio": jnp.broadcast_to(goal_proprio, (goal_draws,) + goal_proprio.shape)}
      goal_pixels = draws[0]
    knobs = None if table is None else jax.tree.map(lambda x: x[setting], table)
    return Carry(env_state=env_state, model=model.init(params, k_model, obs0, goal_obs, knobs),
                 plan=jnp.zeros((horizon, act_dim)), goal_pixels=goal_pixels, condition=condition,
                 first_pixels=obs0["pixels"] if record_frames else None,
                 success_any=jnp.zeros((), bool), key=k_run)

  def replan(carry, replan_idx):
    """One replan: plan, execute the first chunk, observe, adapt; returns (next carry, ReplanOutput)."""
    key, k_plan, k_obs = jax.random.split(carry.key, 3)
    cost_fn, describe = model.planning(carry.model, carry.env_state, replan_idx)
    plan, plan_info = planner(cost_fn, planning.warm_start(carry.plan), k_plan, planner_cfg)
    chunk = plan[0]
    plan_metrics, plan_latents = describe(plan)

    def env_step(state, a):
      return env.step(state, a), None

    env_state, _ = jax.lax.scan(env_step, carry.env_state, chunk.reshape(fs, env_a))
    new_obs = shift("apply_obs", carry.condition, env_state.obs, k_obs)
    model_state, model_metrics = model.observe(carry.model, new_obs, chunk)

    metrics = {"plan_cost": plan_info["cost"], **plan_metrics, **model_metrics,
               "success": env_state.metrics["success"]}
    metrics.update({f"env_{k}": v for k, v in env_state.metrics.items() if k != "success"})
    success = env_state.metrics["success"] > 0.5
    new_carry = carry.replace(env_state=env_state, model=model_state, plan=plan,
                              success_any=carry.success_any | success, key=key)
    output = ReplanOutput(metrics=metrics, state=env_state.info["state"],
                          pixels=new_obs["pixels"] if record_frames else None,
                          plan_latents=plan_latents if record_frames else None)
    return new_carry, output

  def finish(first, final, outputs):
    """Assembles the EpisodeResult from the first carry, the last carry and the stacked ReplanOutputs."""
    states = jnp.concatenate([first.env_state.info["state"][None], outputs.state], 0)
    frames = jnp.concatenate([first.first_pixels[None], outputs.pixels], 0) if record_frames else None
    return EpisodeResult(success_any=final.success_any,
                         success_final=final.env_state.metrics["success"] > 0.5,
                         per_replan=outputs.metrics, states=states,
                         goal_state=first.env_state.info["goal_state"], frames=frames,
                         goal_pixels=first.goal_pixels, task=first.env_state.info["task"],
                         condition=first.condition, plan_latents=outputs.plan_latents)

  def play(first):
    """The replan scan from the carry `first`: (final carry, EpisodeResult)."""
    final, outputs = jax.lax.scan(replan, first, jnp.arange(replans))
    return final, finish(first, final, outputs)

  def run(params, key, task=None, condition=0, setting=0):
    """Runs one episode. params: pretrained world-model params; key: typed PRNG key; task: optional task;
    condition: int32[] index into `conditions`; setting: int32[] index into `settings` (ignored without)."""
    return play(init(params, key, task, condition, setting))[1]

  return EpisodeProgram(init=init, replan=replan, finish=finish, play=play, run=run, conditions=conditions,
                        num_settings=1 if settings is None else len(settings))


def sequence_keys(key: jax.Array, length: int) -> jax.Array:
  """key<impl>[length]: the episode keys of the sequence named by `key` (`fold_in(key, k)`), the same
  whether the sequence is played with continual adaptation or with the model reset between episodes."""
  return jax.vmap(lambda k: jax.random.fold_in(key, k))(jnp.arange(length))


def make_continual(program: EpisodeProgram, length: int, keep_buffer: bool = False) -> EpisodeProgram:
  """Continual adaptation: the program's episodes played in sequences of `length` in the same world, each
  episode starting from the adapted params (and the Adam moments, which `adapt.reset_optimizer` resets at
  every replan anyway) the previous episode ended with; the buffer too with `keep_buffer`. Each episode's
  task, start, goal and context are its own.

  Returns an `EpisodeProgram` whose `run(params, key, task=None, condition=0)` plays the sequence
  `sequence_keys(key, length)` under one condition and returns the stacked EpisodeResult (leading axis
  `length`), so `mpc.evaluate` runs many sequences (one key each) batched and sharded. The same keys
  through `program.run` give the reset baseline, paired episode by episode. Its init / replan / finish /
  play are the per-episode program's. Only an adapting world model (`world_model_planner`) can carry over.
  """
  if int(length) < 1:
    raise ValueError(f"length must be >= 1 episodes per sequence, got {length!r}")
  length = int(length)

  def run(params, key, task=None, condition=0, setting=0):
    keys = sequence_keys(key, length)
    start = program.init(params, keys[0], task, condition, setting).model
    if not isinstance(start, ModelState):
      raise ValueError(f"continual adaptation carries a world model's adapted params; this program's model "
                       f"state is a {type(start).__name__}")

    def episode(previous, k):
      first = program.init(params, k, task, condition, setting)
      kept = {"params": previous.params, "opt_state": previous.opt_state}
      if keep_buffer:
        kept["buffer"] = previous.buffer
      final, result = program.play(first.replace(model=first.model.replace(**kept)))
      return final.model, result

    # The first episode starts from its own init (previous = its fresh model state): one traced episode.
    return jax.lax.scan(episode, start, keys)[1]

  return dataclasses.replace(program, run=run)
