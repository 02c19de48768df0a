"""MPC benchmark: every ratio is measured side by side in this one run (the machine is noisy; no asserts).

  python experiments/benchmark.py --config=adajepa_jax/configs/pusht.py:cpu --out=workdirs/benchmark

(a) per-replan time, frozen vs adaptive, for CEM and GD, and the adaptation overhead ratio;
(b) episodes/s of batched adaptive evaluation (batch 1, 8, 50) vs batched frozen, and vs the reference
    structure (the authors' code: adaptive episodes one at a time, a Python loop over replans calling the same
    jitted init / replan building blocks);
(c) achieved FLOP/s of one CEM plan vs a plain matmul of similar FLOP count on the same device;
(d) compile time of the episode program, cold (empty persistent cache) and warm (cache hit).
Weights are a fresh init (timings do not depend on trained values). Writes <out>/benchmark.json.
"""
import json
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from adajepa_jax import utils

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", "adajepa_jax/configs/pusht.py:cpu", "Task/model config.")
flags.DEFINE_string("out", "workdirs/benchmark", "Output folder for benchmark.json.")
flags.DEFINE_list("batches", ["1", "8", "50"], "Episode batch sizes for (b).")
flags.DEFINE_integer("replans", 5, "Replans per episode in (b) and (d).")
flags.DEFINE_integer("repeats", 5, "Timed repetitions (the median is reported).")
flags.DEFINE_integer("reference_episodes", 8, "Episodes run one at a time for the reference structure.")
flags.DEFINE_integer("cem_samples", 200, "CEM samples (the paper's 200; the issue's overhead target uses it).")
flags.DEFINE_integer("cem_iterations", 10, "CEM iterations (the paper's 10).")
flags.DEFINE_integer("gd_steps", 100, "GD steps (the paper's 100).")
flags.DEFINE_list("sections", ["d", "a", "b", "c"], "Which parts to run (d needs a cold cache: run it first).")


def _block(x):
  return jax.block_until_ready(x)


def median_time(fn, repeats):
  """Median wall time of `fn()` (already compiled) over `repeats` calls, in seconds."""
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    _block(fn())
    times.append(time.perf_counter() - t)
  return float(np.median(times))


def build(config, planner, adapt, replans):
  from adajepa_jax import envs
  from adajepa_jax.eval import pipeline
  from adajepa_jax.mpc import make_episode
  cfg = pipeline.mode_config(config, config.adapt.spec if adapt else "frozen")
  cfg.plan.planner = planner
  cfg.eval.replans = replans
  env = envs.make(cfg.task.name, **cfg.task.kwargs)
  wm = pipeline.world_model_for(cfg, env)
  return make_episode(env, wm, cfg, record_frames=False), wm


def per_replan_times(config, params, repeats):
  """(a): seconds per replan for one episode, frozen vs adaptive, per planner."""
  out = {}
  for planner in ("cem", "gd"):
    row = {}
    for adapt in (False, True):
      program, _ = build(config, planner, adapt, replans=1)
      carry = jax.jit(program.init)(params, jax.random.key(0))
      replan = jax.jit(program.replan)
      _block(replan(carry, 0))
      row["adaptive" if adapt else "frozen"] = median_time(lambda: replan(carry, 0), repeats)
    row["overhead"] = row["adaptive"] / row["frozen"] - 1.0
    out[planner] = row
    print(f"(a) {planner}: frozen {row['frozen'] * 1e3:.1f} ms/replan, adaptive {row['adaptive'] * 1e3:.1f} "
          f"ms/replan, adaptation overhead {100 * row['overhead']:+.1f}%")
  return out


def throughput(config, params, batches, replans, repeats, reference_episodes):
  """(b): episodes/s batched frozen vs batched adaptive vs the one-at-a-time reference structure."""
  from adajepa_jax.mpc import episode_keys, make_evaluator
  out = {}
  programs = {a: build(config, config.plan.planner, a, replans)[0] for a in (False, True)}
  for b in batches:
    keys = episode_keys(0, 1, b)
    row = {}
    for adapt, program in programs.items():
      run = make_evaluator(program, mesh=None)
      _block(run(params, keys))
      row["adaptive" if adapt else "frozen"] = b / median_time(lambda: run(params, keys), repeats)
    row["adaptive_over_frozen"] = row["adaptive"] / row["frozen"]
    out[b] = row
  program = programs[True]
  init, replan, finish = jax.jit(program.init), jax.jit(program.replan), jax.jit(program.finish)

  def reference():
    results = []
    for e in range(reference_episodes):
      first = carry = init(params, jax.random.wrap_key_data(episode_keys(0, 1, reference_episodes)[e]))
      outs = []
      for r in range(replans):
        carry, o = replan(carry, r)
        outs.append(o)
      results.append(finish(first, carry, jax.tree.map(lambda *x: jnp.stack(x), *outs)))
    return results

  _block(reference())
  ref = reference_episodes / median_time(reference, max(1, repeats // 2))
  out["reference_adaptive"] = ref
  for b in batches:
    out[b]["adaptive_over_reference"] = out[b]["adaptive"] / ref
    print(f"(b) batch {b:3d}: frozen {out[b]['frozen']:.2f} ep/s, adaptive {out[b]['adaptive']:.2f} ep/s "
          f"(x{out[b]['adaptive_over_frozen']:.2f} of frozen, x{out[b]['adaptive_over_reference']:.2f} of "
          f"reference {ref:.2f} ep/s)")
  return out


def cem_flops(config, params, repeats):
  """(c): achieved FLOP/s of one CEM plan vs a matmul of similar FLOPs.

  XLA's cost analysis counts a loop body once, so the plan's FLOPs are counted from its loop-free part: one
  predictor call on the (samples, history) window, times horizon x iterations (the rollout re-predicts its
  window every step, which is work done). Time is the jitted planner alone on a fixed encoded context.
  """
  from adajepa_jax import envs, planning
  from adajepa_jax.eval import pipeline
  from adajepa_jax.planning import objectives
  env = envs.make(config.task.name, **config.task.kwargs)
  wm = pipeline.world_model_for(config, env)
  cem, horizon, hist = config.plan.cem, config.plan.horizon, config.data.history
  obs = env.reset(jax.random.key(0)).obs
  z_ctx = wm.encode(params, jax.tree.map(lambda x: jnp.broadcast_to(x, (hist,) + x.shape), obs))
  a_ctx = jnp.zeros((hist - 1, wm.action_size))
  weights = objectives.horizon_weights("all", horizon)

  def cost_fn(plans):
    z = jax.vmap(lambda p: wm.rollout(params, z_ctx, a_ctx, p))(plans)
    return objectives.latent_cost(z, z_ctx[-1], weights, wm.visual_dim, config.plan.proprio_weight)

  plan = jax.jit(lambda key: planning.cem_plan(cost_fn, jnp.zeros((horizon, wm.action_size)), key, cem)[0])
  _block(plan(jax.random.key(1)))
  t_cem = median_time(lambda: plan(jax.random.key(1)), repeats)
  window = jnp.broadcast_to(z_ctx, (cem.samples,) + z_ctx.shape)
  actions = jnp.zeros((cem.samples, hist, wm.action_size))
  step = jax.jit(lambda z, a: wm.predict(params, z, a)).lower(window, actions).compile().cost_analysis()
  step = step[0] if isinstance(step, (list, tuple)) else step
  flops = float(step.get("flops", 0.0)) * horizon * cem.iterations
  n = max(64, int(round((flops / 2) ** (1 / 3))))
  a = jax.random.normal(jax.random.key(1), (n, n))
  matmul = jax.jit(lambda x: x @ x)
  _block(matmul(a))
  t_mm = median_time(lambda: matmul(a), repeats)
  out = {"cem_flops": flops, "cem_seconds": t_cem, "cem_flops_per_s": flops / t_cem,
         "matmul_n": n, "matmul_flops_per_s": 2 * n ** 3 / t_mm}
  out["ratio"] = out["cem_flops_per_s"] / out["matmul_flops_per_s"]
  print(f"(c) CEM plan {cem.samples}x{cem.iterations}: {flops / 1e9:.2f} GFLOP in {t_cem * 1e3:.1f} ms = "
        f"{out['cem_flops_per_s'] / 1e9:.1f} GFLOP/s; matmul {n}x{n}: {out['matmul_flops_per_s'] / 1e9:.1f} "
        f"GFLOP/s; ratio {out['ratio']:.2f}")
  return out


def compile_times(config, params, replans):
  """(d): lower+compile seconds of the batched adaptive episode program, cold cache then cache hit."""
  from adajepa_jax.mpc import episode_keys
  program, _ = build(config, config.plan.planner, True, replans)
  keys = episode_keys(0, 1, 8)
  fn = jax.jit(jax.vmap(lambda k: program.run(params, jax.random.wrap_key_data(k))))
  out = {}
  for label in ("cold", "cached"):
    jax.clear_caches()
    t = time.perf_counter()
    fn.lower(keys).compile()
    out[label] = time.perf_counter() - t
  print(f"(d) episode compile: cold {out['cold']:.1f} s, with persistent cache {out['cached']:.1f} s")
  return out


def main(argv):
  del argv
  cold_cache = tempfile.mkdtemp(prefix="adajepa_bench_cache_")
  utils.setup_runtime(cold_cache)   # (d) needs an empty cache; everything after reuses it
  config = FLAGS.config
  config.plan.cem.update(samples=FLAGS.cem_samples, iterations=FLAGS.cem_iterations,
                         elites=max(1, round(FLAGS.cem_samples * 0.15)))
  config.plan.gd.steps = FLAGS.gd_steps
  from adajepa_jax.eval import pipeline
  from adajepa_jax import envs
  env = envs.make(config.task.name, **config.task.kwargs)
  params = pipeline.world_model_for(config, env).init(jax.random.key(0))
  print(f"device: {jax.devices()[0].device_kind} x{len(jax.devices())}; config {config.task.name} "
        f"{config.task.kwargs.image_size}px, CEM {config.plan.cem.samples}x{config.plan.cem.iterations}, "
        f"GD {config.plan.gd.steps} steps, adapt {config.adapt.spec}")
  results = {"device": jax.devices()[0].device_kind, "config": config.to_dict()}
  sections = {
      "d": ("compile", lambda: compile_times(config, params, FLAGS.replans)),
      "a": ("per_replan", lambda: per_replan_times(config, params, FLAGS.repeats)),
      "b": ("throughput", lambda: throughput(config, params, [int(b) for b in FLAGS.batches], FLAGS.replans,
                                             FLAGS.repeats, FLAGS.reference_episodes)),
      "c": ("cem_flops", lambda: cem_flops(config, params, FLAGS.repeats)),
  }
  unknown = [s for s in FLAGS.sections if s not in sections]
  if unknown:
    raise ValueError(f"Unknown --sections {unknown}; valid: {', '.join(sections)}")
  for name in FLAGS.sections:
    key, fn = sections[name]
    results[key] = fn()
  os.makedirs(FLAGS.out, exist_ok=True)
  with open(os.path.join(FLAGS.out, "benchmark.json"), "w") as f:
    json.dump(results, f, indent=1, default=str)
  print(f"wrote {os.path.join(FLAGS.out, 'benchmark.json')}")


if __name__ == "__main__":
  app.run(main)
