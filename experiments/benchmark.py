"""MPC benchmark: every ratio is measured side by side in this one run (the machine is noisy; no asserts).

  python experiments/benchmark.py --config=adajepa_jax/configs/pusht.py:cpu --config.eval.replans=5 \
      --config.plan.gd.steps=100 --out=workdirs/benchmark

Planner budgets (`plan.cem`, `plan.gd.steps`) and the replans per episode of (b), (d), (e) (`eval.replans`)
are the config's; the commands in RESULTS.md set GD to the paper's 100 steps and a few replans.

(a) per-replan time, frozen vs adaptive, for CEM and GD, and the adaptation overhead ratio;
(b) episodes/s of batched adaptive evaluation (batch 1, 8, 50; sharded over the devices as `mpc.evaluate`
    does) vs batched frozen, and vs the reference structure (the authors' code: adaptive episodes one at a
    time on the default device, a Python loop over replans calling the same jitted init / replan building
    blocks);
(c) achieved FLOP/s of CEM planning (one episode's plan, and the plans of --cem_batch episodes vmapped as in
    batched evaluation) vs a plain matmul of similar FLOP count on the same device;
(d) compile time of the episode program, cold (empty persistent cache) and warm (cache hit);
(e) shift conditions that share an env (--conditions), adaptive: one program per condition vs one program
    for all (`make_episode(..., conditions)`): first call (compile + run) and steady-state seconds to evaluate
    the same --condition_episodes episodes under every condition;
(f) the training step: windows/s and encoded frames/s at the config's batch size, and its FLOP/s (XLA's cost
    analysis of the jitted step) as a fraction of a plain matmul's FLOP/s, measured side by side;
(g) a grid of adaptation settings (--grid_lr_scales x --grid_steps) on the same --grid_episodes episodes:
    one program carrying the settings as data (`make_episode(settings=...)`) vs one program per setting;
    compiles (traces of the episode) and the steady-state time of the grid over the sum of the singles'.
Timed alternatives are called in turn (A B A B ...) so that drift in machine load affects them alike; the
median of --repeats calls is reported. Weights are a fresh init (timings do not depend on trained values).
Runs with the project's XLA:CPU flags (`utils.add_xla_flags`: fusion settings and one host device per
core) unless --xla_defaults (XLA's defaults: one CPU device). Writes <out>/benchmark.json.
"""
import functools
import json
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from ml_collections import config_flags

from adajepa_jax import utils
from adajepa_jax.errors import UsageError

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", "adajepa_jax/configs/pusht.py:cpu", "Task/model config.")
flags.DEFINE_string("out", "workdirs/benchmark", "Output folder for benchmark.json.")
flags.DEFINE_list("batches", ["1", "8", "50"], "Episode batch sizes for (b).")
flags.DEFINE_integer("repeats", 5, "Timed repetitions (the median is reported).")
flags.DEFINE_integer("reference_episodes", 8, "Episodes run one at a time for the reference structure.")
flags.DEFINE_integer("cem_batch", 8, "Episodes whose CEM plans are vmapped together in (c).")
flags.DEFINE_list("conditions", ["clean", "blur", "high_damping"], "Shift conditions for (e).")
flags.DEFINE_integer("condition_episodes", 8, "Episodes per condition in (e).")
flags.DEFINE_list("grid_lr_scales", ["0.2", "1", "2", "5"], "Learning-rate scales of the grid in (g).")
flags.DEFINE_list("grid_steps", ["1", "2", "4"], "Adaptation steps per replan of the grid in (g).")
flags.DEFINE_integer("grid_episodes", 8, "Episodes per setting in (g).")
SECTIONS = ("d", "a", "b", "c", "e", "f", "g")
flags.DEFINE_list("sections", list(SECTIONS), "Which parts to run (d needs a cold cache: run it first).")
flags.DEFINE_bool("xla_defaults", False, "Run without the project's XLA:CPU flags (utils.add_xla_flags).")


def _block(x):
  return jax.block_until_ready(x)


def median_times(fns, repeats):
  """Median wall seconds of each already-compiled `fns[name]()` over `repeats` rounds; each round calls every
  function once, in turn, so that changes in machine load hit all of them alike."""
  times = {name: [] for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      t = time.perf_counter()
      _block(fn())
      times[name].append(time.perf_counter() - t)
  return {name: float(np.median(ts)) for name, ts in times.items()}


def first_and_steady(fns, repeats):
  """({name: seconds of the first call (compile + run)}, {name: median steady-state seconds}) of `fns`."""
  first = {}
  for name, fn in fns.items():
    t = time.perf_counter()
    _block(fn())
    first[name] = time.perf_counter() - t
  return first, median_times(fns, repeats)


def build_program(config, planner, adapt, replans, conditions=None):
  """(episode program, world model) of `config` with the given planner, adaptation on/off and budget."""
  from adajepa_jax.envs import shifts
  from adajepa_jax.eval import build
  from adajepa_jax.mpc import make_episode
  cfg = build.mode_config(config, config.adapt.spec if adapt else "frozen")
  cfg.plan.planner = planner
  cfg.eval.replans = replans
  conditions = shifts.same_env(conditions if conditions is not None else "clean")
  env = conditions[0].task_env(cfg.task.name, **cfg.task.kwargs)
  wm = build.world_model_for(cfg, env)
  return make_episode(env, wm, cfg, conditions, record_frames=False), wm


def per_replan_times(config, params, repeats):
  """(a): seconds per replan for one episode, frozen vs adaptive, per planner."""
  out = {}
  for planner in ("cem", "gd"):
    calls = {}
    for adapt in (False, True):
      program, _ = build_program(config, planner, adapt, replans=1)
      carry = jax.jit(program.init)(params, jax.random.key(0))
      replan = jax.jit(program.replan)
      _block(replan(carry, 0))
      calls["adaptive" if adapt else "frozen"] = functools.partial(replan, carry, 0)
    row = median_times(calls, repeats)
    row["overhead"] = row["adaptive"] / row["frozen"] - 1.0
    out[planner] = row
    print(f"(a) {planner}: frozen {row['frozen'] * 1e3:.1f} ms/replan, adaptive {row['adaptive'] * 1e3:.1f} "
          f"ms/replan, adaptation overhead {100 * row['overhead']:+.1f}%")
  return out


def throughput(config, params, batches, replans, repeats, reference_episodes):
  """(b): episodes/s batched frozen vs batched adaptive vs the one-at-a-time reference structure."""
  from adajepa_jax.mpc import episode_keys, make_evaluator, make_mesh
  mesh = make_mesh() if len(jax.devices()) > 1 else None   # as `mpc.evaluate` shards episodes
  out = {}
  programs = {a: build_program(config, config.plan.planner, a, replans)[0] for a in (False, True)}
  program = programs[True]
  init, replan, finish = jax.jit(program.init), jax.jit(program.replan), jax.jit(program.finish)
  ref_keys = episode_keys(0, 1, reference_episodes)

  def reference():
    results = []
    for e in range(reference_episodes):
      first = carry = init(params, ref_keys[e])
      outs = []
      for r in range(replans):
        carry, o = replan(carry, r)
        outs.append(o)
      results.append(finish(first, carry, jax.tree.map(lambda *x: jnp.stack(x), *outs)))
    return results

  _block(reference())
  for b in batches:
    keys = episode_keys(0, 1, b)
    calls = {"reference": reference}
    for adapt, program in programs.items():
      run = make_evaluator(program, mesh=mesh)
      _block(run(params, keys))
      calls["adaptive" if adapt else "frozen"] = functools.partial(run, params, keys)
    seconds = median_times(calls, repeats)
    row = {"frozen": b / seconds["frozen"], "adaptive": b / seconds["adaptive"],
           "reference_adaptive": reference_episodes / seconds["reference"]}
    row["adaptive_over_frozen"] = row["adaptive"] / row["frozen"]
    row["adaptive_over_reference"] = row["adaptive"] / row["reference_adaptive"]
    out[b] = row
    print(f"(b) batch {b:3d}: frozen {row['frozen']:.2f} ep/s, adaptive {row['adaptive']:.2f} ep/s "
          f"(x{row['adaptive_over_frozen']:.2f} of frozen, x{row['adaptive_over_reference']:.2f} of the "
          f"reference's {row['reference_adaptive']:.2f} ep/s, timed alongside)")
  return out


def cem_flops(config, params, repeats, batch):
  """(c): achieved FLOP/s of CEM planning vs a matmul of similar FLOPs, for one episode's plan and for the
  plans of `batch` episodes vmapped together (as batched evaluation runs them).

  XLA's cost analysis counts a loop body once, so the plan's FLOPs are counted as those of a one-step rollout
  of all samples (the window's predictor pass, whose last block runs for the newest frame only), times
  horizon x iterations. Time is the jitted planner alone on fixed encoded contexts.
  """
  from adajepa_jax import envs, planning
  from adajepa_jax.eval import build
  from adajepa_jax.planning import objectives
  env = envs.make(config.task.name, **config.task.kwargs)
  wm = build.world_model_for(config, env)
  cem, horizon, hist = config.plan.cem, config.plan.horizon, config.data.history
  obs = jax.vmap(env.reset)(jax.random.split(jax.random.key(0), batch)).obs
  z_ctx = wm.encode(params, jax.tree.map(lambda x: jnp.broadcast_to(x[:, None], (batch, hist) + x.shape[1:]),
                                         obs))                                  # [batch, h, N, D]
  a_ctx = jnp.zeros((hist - 1, wm.action_size))
  weights = objectives.horizon_weights("all", horizon)

  def plan(z, key):
    def cost_fn(plans):
      zs = jax.vmap(lambda p: wm.rollout(params, z, a_ctx, p))(plans)
      return objectives.latent_cost(zs, z[-1], weights, wm.visual_dim, config.plan.proprio_weight)
    return planning.cem_plan(cost_fn, jnp.zeros((horizon, wm.action_size)), key, cem)[0]

  keys = jax.random.split(jax.random.key(1), batch)
  window = jnp.broadcast_to(z_ctx[0], (cem.samples,) + z_ctx.shape[1:])
  one_step = jnp.zeros((cem.samples, 1, wm.action_size))
  step = jax.jit(lambda z, p: wm.rollout(params, z, jnp.zeros((cem.samples, hist - 1, wm.action_size)), p))
  step = step.lower(window, one_step).compile().cost_analysis()
  step = step[0] if isinstance(step, (list, tuple)) else step
  flops_one = float(step.get("flops", 0.0)) * horizon * cem.iterations
  out = {}
  for label, episodes in (("one", 1), ("batch", batch)):
    fn = jax.jit(jax.vmap(plan))
    flops = flops_one * episodes
    n = max(64, int(round((flops / 2) ** (1 / 3))))
    a = jax.random.normal(jax.random.key(1), (n, n))
    matmul = jax.jit(lambda x: x @ x)
    _block(fn(z_ctx[:episodes], keys[:episodes]))
    _block(matmul(a))
    t = median_times({"cem": functools.partial(fn, z_ctx[:episodes], keys[:episodes]),
                      "matmul": functools.partial(matmul, a)}, repeats)
    row = {"episodes": episodes, "cem_flops": flops, "cem_seconds": t["cem"], "cem_flops_per_s": flops / t["cem"],
           "matmul_n": n, "matmul_flops_per_s": 2 * n ** 3 / t["matmul"]}
    row["ratio"] = row["cem_flops_per_s"] / row["matmul_flops_per_s"]
    out[label] = row
    print(f"(c) CEM {cem.samples}x{cem.iterations}, {episodes} episode(s) planned together: {flops / 1e9:.2f} GFLOP "
          f"in {t['cem'] * 1e3:.1f} ms = {row['cem_flops_per_s'] / 1e9:.1f} GFLOP/s; matmul {n}x{n}: "
          f"{row['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s; ratio {row['ratio']:.2f}")
  return out


def train_step_speed(config, repeats):
  """(f): windows/s, frames/s and FLOP/s of one jitted training step (the config's batch, loss and optimiser)
  vs a matmul of similar FLOPs; data are random frames of the loader's batch structure."""
  from adajepa_jax import envs
  from adajepa_jax.eval import build
  from adajepa_jax.training import train
  env = envs.make(config.task.name, **config.task.kwargs)
  wm = build.world_model_for(config, env)
  tx = train.make_pretrain_optimizer(config.train)
  state = train.create_train_state(wm, tx, jax.random.key(0))
  b, h, img = config.train.batch_size, config.data.history, env.image_size
  k1, k2, k3 = jax.random.split(jax.random.key(1), 3)
  batch = {"pixels": jax.random.randint(k1, (b, h + 1, img, img, 3), 0, 256).astype(jnp.uint8),
           "proprio": jax.random.normal(k2, (b, h + 1, env.proprio_size)),
           "actions": jax.random.uniform(k3, (b, h, wm.action_size), minval=-1, maxval=1)}
  step = jax.jit(train.make_train_step(wm, config.train, tx))
  cost = step.lower(state, batch).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float(cost.get("flops", 0.0))
  n = max(64, int(round((flops / 2) ** (1 / 3))))
  a = jax.random.normal(jax.random.key(2), (n, n))
  matmul = jax.jit(lambda x: x @ x)
  # The profile: the visual encoder's trunk alone on the step's frames, forward and forward + backward.
  frames = batch["pixels"].reshape(-1, img, img, 3)
  trunk_fwd = jax.jit(lambda p: wm.features(p, frames))
  trunk_grad = jax.jit(jax.grad(lambda p: jnp.mean(jnp.square(wm.features(p, frames)))))
  fns = {"train": lambda: step(state, batch), "matmul": functools.partial(matmul, a),
         "trunk_fwd": lambda: trunk_fwd(state.params), "trunk_fwd_bwd": lambda: trunk_grad(state.params)}
  for fn in fns.values():
    _block(fn())
  t = median_times(fns, repeats)
  out = {"batch": b, "frames_per_window": h + 1, "seconds": t["train"], "windows_per_s": b / t["train"],
         "frames_per_s": b * (h + 1) / t["train"], "flops": flops, "flops_per_s": flops / t["train"],
         "matmul_n": n, "matmul_flops_per_s": 2 * n ** 3 / t["matmul"],
         "trunk_fwd_s": t["trunk_fwd"], "trunk_fwd_bwd_s": t["trunk_fwd_bwd"]}
  out["ratio"] = out["flops_per_s"] / out["matmul_flops_per_s"]
  print(f"(f) profile: encoder trunk forward {t['trunk_fwd'] * 1e3:.1f} ms, forward + backward "
        f"{t['trunk_fwd_bwd'] * 1e3:.1f} ms ({t['trunk_fwd_bwd'] / t['train']:.2f} of the step), on the step's "
        f"{frames.shape[0]} frames")
  print(f"(f) train step, batch {b} x {h + 1} frames at {img} px: {t['train'] * 1e3:.1f} ms = "
        f"{out['windows_per_s']:.0f} windows/s, {out['frames_per_s']:.0f} frames/s; {flops / 1e9:.2f} GFLOP "
        f"-> {out['flops_per_s'] / 1e9:.1f} GFLOP/s; matmul {n}x{n}: {out['matmul_flops_per_s'] / 1e9:.1f} "
        f"GFLOP/s; ratio {out['ratio']:.2f}")
  return out


def compile_times(config, params, replans):
  """(d): lower+compile seconds of the batched adaptive episode program, cold cache then cache hit."""
  from adajepa_jax.mpc import episode_keys
  program, _ = build_program(config, config.plan.planner, True, replans)
  keys = episode_keys(0, 1, 8)
  fn = jax.jit(jax.vmap(lambda k: program.run(params, k)))
  out = {}
  for label in ("cold", "cached"):
    jax.clear_caches()
    t = time.perf_counter()
    fn.lower(keys).compile()
    out[label] = time.perf_counter() - t
  print(f"(d) episode compile: cold {out['cold']:.1f} s, with persistent cache {out['cached']:.1f} s")
  return out


def condition_batching(config, params, names, episodes, replans, repeats):
  """(e): the same episodes under every condition of `names`, adaptive: one program per condition vs one
  program for all, called once on all C x E episodes and in C chunks of E (the separate programs' batch)."""
  from adajepa_jax.mpc import episode_keys, make_evaluator, make_mesh, with_conditions
  mesh = make_mesh() if len(jax.devices()) > 1 else None
  keys = episode_keys(0, 1, episodes)
  all_keys, ids = with_conditions(keys, len(names))
  separate = [make_evaluator(build_program(config, config.plan.planner, True, replans, name)[0], mesh)
              for name in names]
  program = build_program(config, config.plan.planner, True, replans, names)[0]
  combined, chunked = make_evaluator(program, mesh), make_evaluator(program, mesh, batch_size=episodes)
  calls = {"separate": lambda: [run(params, keys) for run in separate],
           "combined": lambda: combined(params, all_keys, ids),
           "combined_chunked": lambda: chunked(params, all_keys, ids)}
  first, steady = first_and_steady(calls, repeats)
  out = {"conditions": list(names), "episodes_per_condition": episodes, "first_call": first, "steady": steady}
  print(f"(e) {len(names)} conditions ({', '.join(names)}) x {episodes} episodes, adaptive; first call "
        f"(compile + run) / steady-state seconds: {len(names)} programs {first['separate']:.1f} / "
        f"{steady['separate']:.2f}")
  for name in ("combined", "combined_chunked"):
    out[f"{name}_first_call_ratio"] = first[name] / first["separate"]
    out[f"{name}_steady_ratio"] = steady[name] / steady["separate"]
    label = (f"one program, one call of {len(names) * episodes}" if name == "combined"
             else f"one program, {len(names)} chunks of {episodes}")
    print(f"(e)   {label}: {first[name]:.1f} / {steady[name]:.2f} (x{out[name + '_first_call_ratio']:.2f} / "
          f"x{out[name + '_steady_ratio']:.2f})")
  return out


def settings_grid(config, params, scales, steps, episodes, replans, repeats):
  """(g): the same episodes under every adaptation setting of scales x steps: one program with the settings as
  data vs one program per setting (each with the setting in its config). Counts traces of the episode."""
  import dataclasses

  from adajepa_jax import adaptation
  from adajepa_jax.eval import build
  from adajepa_jax.mpc import episode_keys, make_episode, make_evaluator, make_mesh
  mesh = make_mesh() if len(jax.devices()) > 1 else None
  env_cfg = build.mode_config(config, config.adapt.spec)
  env_cfg.eval.replans = replans
  from adajepa_jax import envs
  env = envs.make(env_cfg.task.name, **env_cfg.task.kwargs)
  wm = build.world_model_for(env_cfg, env)
  lr_p, lr_e = adaptation.learning_rates(env_cfg)
  settings = [adaptation.setting_of(env_cfg, lr_predictor=s * lr_p, lr_encoder=s * lr_e, steps=n)
              for s in scales for n in steps]
  traces = {"grid": 0, "singles": 0}

  def counted(program, name):
    def run(*args, **kwargs):
      traces[name] += 1
      return program.run(*args, **kwargs)
    return dataclasses.replace(program, run=run)

  singles = []
  for st in settings:
    cfg = build.mode_config(config, config.adapt.spec)
    cfg.eval.replans = replans
    cfg.adapt.update(**st)
    singles.append(make_evaluator(counted(make_episode(env, wm, cfg, record_frames=False), "singles"), mesh))
  grid = make_evaluator(counted(make_episode(env, wm, env_cfg, record_frames=False, settings=settings), "grid"),
                        mesh, batch_size=config.eval.batch_size)
  keys = episode_keys(0, 1, episodes)
  grid_keys, grid_ids = jnp.tile(keys, len(settings)), np.repeat(np.arange(len(settings)), episodes)
  calls = {"singles": lambda: [run(params, keys) for run in singles],
           "grid": lambda: grid(params, grid_keys, None, grid_ids)}
  first, steady = first_and_steady(calls, repeats)
  out = {"settings": len(settings), "episodes_per_setting": episodes, "first_call": first, "steady": steady,
         "grid_compiles": traces["grid"], "single_compiles": traces["singles"],
         "grid_time_ratio": steady["grid"] / steady["singles"],
         "grid_first_call_ratio": first["grid"] / first["singles"]}
  print(f"(g) {len(settings)} adaptation settings (lr x{','.join(f'{s:g}' for s in scales)} x steps "
        f"{','.join(map(str, steps))}) x {episodes} episodes: one program {traces['grid']} compile(s), "
        f"{len(settings)} programs {traces['singles']}; first call {first['grid']:.1f} s vs {first['singles']:.1f} s "
        f"(x{out['grid_first_call_ratio']:.2f}); steady {steady['grid']:.2f} s vs {steady['singles']:.2f} s "
        f"(grid_time_ratio x{out['grid_time_ratio']:.2f}; target <= 1.2)")
  return out


def main(argv):
  del argv
  unknown = [s for s in FLAGS.sections if s not in SECTIONS]
  if unknown:
    raise UsageError(f"Unknown --sections {unknown}; valid: {', '.join(SECTIONS)}")
  cold_cache = tempfile.mkdtemp(prefix="adajepa_bench_cache_")
  utils.setup_runtime(cold_cache, xla_flags=not FLAGS.xla_defaults)   # (d) needs an empty cache
  config = FLAGS.config
  replans = config.eval.replans
  from adajepa_jax.eval import build
  from adajepa_jax import envs
  if "e" in FLAGS.sections:   # bad shift names fail before any compilation
    build.check_conditions(config.task.name, FLAGS.conditions)
    envs.shifts.same_env(FLAGS.conditions)
  env = envs.make(config.task.name, **config.task.kwargs)
  params = build.world_model_for(config, env).init(jax.random.key(0))
  print(f"device: {jax.devices()[0].device_kind} x{len(jax.devices())}; config {config.task.name} "
        f"{config.task.kwargs.image_size}px, CEM {config.plan.cem.samples}x{config.plan.cem.iterations}, "
        f"GD {config.plan.gd.steps} steps, adapt {config.adapt.spec}")
  host = utils.host_info()
  print(f"host: {host['cpu']}")
  results = {"device": jax.devices()[0].device_kind, "host": host, "config": config.to_dict(),
             "xla_flags": os.environ.get("XLA_FLAGS", "")}
  sections = {
      "d": ("compile", lambda: compile_times(config, params, replans)),
      "a": ("per_replan", lambda: per_replan_times(config, params, FLAGS.repeats)),
      "b": ("throughput", lambda: throughput(config, params, [int(b) for b in FLAGS.batches], replans,
                                             FLAGS.repeats, FLAGS.reference_episodes)),
      "c": ("cem_flops", lambda: cem_flops(config, params, FLAGS.repeats, FLAGS.cem_batch)),
      "e": ("conditions", lambda: condition_batching(config, params, FLAGS.conditions, FLAGS.condition_episodes,
                                                     replans, FLAGS.repeats)),
      "f": ("train_step", lambda: train_step_speed(config, FLAGS.repeats)),
      "g": ("settings_grid", lambda: settings_grid(config, params, [float(x) for x in FLAGS.grid_lr_scales],
                                                   [int(x) for x in FLAGS.grid_steps], FLAGS.grid_episodes,
                                                   replans, FLAGS.repeats)),
  }
  for name in FLAGS.sections:
    key, fn = sections[name]
    results[key] = fn()
  if "settings_grid" in results:   # the grid's headline numbers, also at the top level
    results.update({k: results["settings_grid"][k] for k in ("grid_compiles", "grid_time_ratio")})
  os.makedirs(FLAGS.out, exist_ok=True)
  with open(os.path.join(FLAGS.out, "benchmark.json"), "w") as f:
    json.dump(results, f, indent=1, default=str)
  print(f"wrote {os.path.join(FLAGS.out, 'benchmark.json')}")


if __name__ == "__main__":
  utils.run(main, setup=False)
