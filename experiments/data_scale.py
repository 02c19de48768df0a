"""Data scale x shape diversity on PushObj: K training shapes x N trajectories per shape, each model evaluated
frozen and adaptive on every one of the 7 shapes (the paper's data-scale study, at this machine's scale).

  python experiments/data_scale.py --workdir=workdirs/data_scale --shapes_k=1,2,4 --per_shape=250,500,1000

Cell (K, N) trains on the first K of T, L, Z, + with K * N trajectories (`data.episodes`) for a number of
steps fixed per K (`--steps`, one per K; default the config's `train.steps` for every K), then evaluates on
the 7 `shape_<name>` conditions (one compiled program per mode). Each cell has its own workdir,
`<workdir>/k<K>_n<N>` (data, checkpoints, evidence, eval/): every stage resumes, so re-running the command
continues an interrupted grid. Writes <workdir>/data_scale.{csv,md} (one row per evaluated cell of the grid and mode: success on the
cell's own training shapes ("seen") and on the held-out I, smallT, square ("unseen"), pooled per seed, with
the paired difference adaptive - frozen), <workdir>/data_scale.png (heatmaps) and
<workdir>/data_scale_claims.{csv,md} (the paper's two claims as paired differences between cells: `claims`).

`--tables_only` runs nothing: it rebuilds those files from the grid's cells already evaluated under --workdir,
in a cell's `eval/results/` or in a committed copy's `json/` (results/data_scale holds one per cell), and
lists the cells it leaves out:

  python experiments/data_scale.py --workdir=results/data_scale --shapes_k=1,2,4 --per_shape=250,500,1000 \
      --steps=6000,6000,6000 --tables_only
"""
import json
import os

from absl import flags
from ml_collections import config_flags

from adajepa_jax import utils

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", "adajepa_jax/configs/pushobj.py:cpu", "Every cell's base config.")
flags.DEFINE_string("workdir", None, "The grid's folder (one sub-folder per cell).")
flags.DEFINE_list("shapes_k", ["1", "2", "4"], "K: numbers of training shapes (the first K of T, L, Z, +).")
flags.DEFINE_list("per_shape", ["250", "500", "1000"], "N: trajectories per training shape.")
flags.DEFINE_list("steps", [], "Training steps, one per K (default: the config's train.steps for every K).")
flags.DEFINE_list("modes", [], "'frozen' and/or adaptation specs. Default: frozen and the config's adapt.spec.")
flags.DEFINE_bool("tables_only", False, "Run nothing: rebuild the tables and heatmaps from the grid's cells "
                  "already evaluated under --workdir (`eval/results/` or a committed copy's `json/`).")
flags.mark_flags_as_required(["workdir"])


def grid(shapes_k, per_shape, steps, default_steps):
  """[(K, N, steps)] for the cells; UsageError names a bad value before anything runs."""
  from adajepa_jax.envs import shapes
  from adajepa_jax.errors import UsageError
  try:
    ks, ns, st = [int(k) for k in shapes_k], [int(n) for n in per_shape], [int(s) for s in steps]
  except ValueError as e:
    raise UsageError(f"--shapes_k, --per_shape and --steps take integers: {e}") from None
  bad = [k for k in ks if not 1 <= k <= len(shapes.TRAIN_SHAPES)]
  if bad:
    raise UsageError(f"--shapes_k={bad[0]}: K must be in 1..{len(shapes.TRAIN_SHAPES)} "
                     f"(the training shapes {', '.join(shapes.TRAIN_SHAPES)})")
  if any(n < 1 for n in ns) or not ks or not ns:
    raise UsageError(f"--per_shape needs positive integers, got {per_shape}")
  if st and len(st) != len(ks):
    raise UsageError(f"--steps gives {len(st)} values for {len(ks)} values of --shapes_k; give one per K")
  by_k = dict(zip(ks, st)) if st else {k: default_steps for k in ks}
  return [(k, n, by_k[k]) for k in ks for n in ns]


def cell_config(base, k, n, steps):
  """The base config with the cell's shape set, data size and training steps."""
  import ml_collections

  from adajepa_jax.envs import shapes
  cfg = ml_collections.ConfigDict(base.to_dict())
  cfg.task.kwargs.shapes = tuple(shapes.TRAIN_SHAPES[:k])
  cfg.data.episodes = k * n
  cfg.train.steps = steps
  return cfg


def cell_rows(k, n, steps, summaries, modes, seeds):
  """One row per mode: pooled seen / unseen success (%) and the paired difference vs frozen."""
  from adajepa_jax.envs import shapes, shifts
  from adajepa_jax.eval import metrics
  groups = {"seen": shapes.TRAIN_SHAPES[:k], "unseen": shapes.TEST_SHAPES}
  pooled = {(m, g): metrics.pool_runs([summaries[shifts.shape_condition(s), m].episodes["success_any"]
                                        for s in names], seeds)
            for m in modes for g, names in groups.items()}
  rows = []
  for m in modes:
    row = {"shapes_k": k, "per_shape": n, "trajectories": k * n, "steps": steps, "mode": m}
    for g in groups:
      s = metrics.seed_summary(pooled[m, g], seeds)
      row[f"{g}_mean"], row[f"{g}_ci95"], row[f"{g}_episodes"] = s["mean"], s["ci95"], s["episodes"]
      d = (metrics.paired_difference(pooled[m, g], pooled["frozen", g], seeds)
           if m != "frozen" and "frozen" in modes else None)
      row[f"{g}_diff_mean"] = d["mean"] if d else float("nan")
      row[f"{g}_diff_ci95"] = d["ci95"] if d else float("nan")
      row[f"{g}_diff_boot95"] = f"[{d['boot_lo']:.1f}, {d['boot_hi']:.1f}]" if d else ""
    rows.append(row)
  return rows


def claims(results, modes, seeds):
  """The paper's two data-scale claims as paired differences between cells on the same episodes (every cell
  evaluates the same episode keys), one row per comparison.

  results: {(K, N): {(condition, mode): RunSummary}}.
  - 'more shapes at a fixed total' (the unseen shapes pooled per seed): for every K above the smallest K_min
    and every total K * N that both K and K_min reach, cell (K, total / K) - cell (K_min, total / K_min), per
    mode.
    Paper (adapted, 16k trajectories): 4 shapes x 4k 51.9 vs 1 shape x 16k 45.8.
  - 'adapted small vs frozen large' (shape T, the one shape every cell trains on): the smallest cell (K_min,
    N_min) adapted - the largest (K_max, N_max) frozen. Paper (seen shapes): 1 x 1k adapted 60.8 vs frozen
    64k 54.
  """
  from adajepa_jax.envs import shapes, shifts
  from adajepa_jax.eval import metrics, summary
  unseen = [shifts.shape_condition(s) for s in shapes.TEST_SHAPES]
  t = shifts.shape_condition(shapes.TRAIN_SHAPES[0])

  def outcomes(cell, mode, conditions):
    runs = [results[cell][c, mode] for c in conditions]
    return metrics.pool_runs([r.episodes["success_any"] for r in runs], seeds), runs

  def row(claim, a, b, conditions, paper):
    (xa, ra), (xb, rb) = outcomes(*a, conditions), outcomes(*b, conditions)
    for run_a, run_b in zip(ra, rb):
      summary.check_same_episodes(run_a, run_b)
    d = metrics.paired_difference(xa, xb, seeds)
    name = lambda cell, mode: f"K={cell[0]} N={cell[1]} {mode}"
    sa, sb = metrics.seed_summary(xa, seeds), metrics.seed_summary(xb, seeds)
    return {"claim": claim, "a": name(*a), "b": name(*b), "episodes": len(xa),
            "a_mean": sa["mean"], "a_ci95": sa["ci95"], "b_mean": sb["mean"], "b_ci95": sb["ci95"],
            "diff_mean": d["mean"], "diff_ci95": d["ci95"],
            "diff_boot95": f"[{d['boot_lo']:.1f}, {d['boot_hi']:.1f}]", "paper": paper}

  ks = sorted({k for k, _ in results})
  rows = []
  if len(ks) < 2:
    return rows
  lo, hi = ks[0], ks[-1]
  for k in ks[1:]:
    totals = sorted({lo * n for c, n in results if c == lo} & {k * n for c, n in results if c == k})
    for total in totals:
      for m in modes:
        rows.append(row("more shapes at a fixed total (unseen)", ((k, total // k), m), ((lo, total // lo), m),
                        unseen, "4 x 4k 51.9 vs 1 x 16k 45.8 (adapted)"))
  adaptive = [m for m in modes if m != "frozen"]
  if adaptive and "frozen" in modes:
    small = (lo, min(n for k, n in results if k == lo))
    large = (hi, max(n for k, n in results if k == hi))
    for m in adaptive:
      rows.append(row("adapted small vs frozen large (shape T)", (small, m), (large, "frozen"), [t],
                      "1 x 1k adapted 60.8 vs 64k frozen 54 (seen)"))
  return rows


def plot(rows, modes, path):
  """Heatmaps of seen / unseen success over K x N, one panel per set and mode (`plots.plot_heatmaps`)."""
  import numpy as np

  from adajepa_jax.eval import plots
  ks, ns = sorted({r["shapes_k"] for r in rows}), sorted({r["per_shape"] for r in rows})
  grids = {}
  for g in ("seen", "unseen"):
    for m in modes:
      grid_ = grids[f"{g} shapes, {m}"] = np.full((len(ks), len(ns)), np.nan)
      for r in rows:
        if r["mode"] == m:
          grid_[ks.index(r["shapes_k"]), ns.index(r["per_shape"])] = r[f"{g}_mean"]
  plots.plot_heatmaps(grids, [str(k) for k in ks], [str(n) for n in ns], path,
                      xlabel="trajectories per shape (N)", ylabel="training shapes (K)",
                      title="PushObj success (%) by data scale")


def main(argv):
  del argv
  from adajepa_jax.data import collect
  from adajepa_jax.envs import shapes, shifts
  from adajepa_jax.eval import build, pipeline, report
  from adajepa_jax.training import checkpoint, train

  base = FLAGS.config
  modes = FLAGS.modes or ["frozen", base.adapt.spec]
  build.parse_modes(modes)
  if base.task.name != "pushobj":
    from adajepa_jax.errors import UsageError
    raise UsageError(f"data_scale.py runs PushObj configs; got task {base.task.name!r}")
  cells = grid(FLAGS.shapes_k, FLAGS.per_shape, FLAGS.steps, int(base.train.steps))
  conditions = [shifts.shape_condition(s) for s in shapes.TRAIN_SHAPES + shapes.TEST_SHAPES]
  if FLAGS.tables_only:
    rows, results, seeds = evaluated_cells(cells, conditions, modes)
    write_tables(rows, results, modes, seeds, FLAGS.workdir)
    return
  os.makedirs(FLAGS.workdir, exist_ok=True)
  rows, results = [], {}
  for i, (k, n, steps) in enumerate(cells):
    cfg = cell_config(base, k, n, steps)
    cell = os.path.join(FLAGS.workdir, f"k{k}_n{n}")
    print(f"[cell {i + 1}/{len(cells)}] K={k} ({', '.join(cfg.task.kwargs.shapes)}), N={n}: "
          f"{cfg.data.episodes} trajectories, {steps} steps -> {cell}")
    collect.collect_for_config(cfg, cell)
    train.train_and_evaluate(cfg, cell)
    _, params, _ = checkpoint.load(cell, config=cfg)
    eval_dir = os.path.join(cell, "eval")
    os.makedirs(eval_dir, exist_ok=True)
    with open(os.path.join(eval_dir, "config.json"), "w") as f:
      json.dump(cfg.to_dict(), f, indent=1, default=str)
    done = pipeline.evaluate_and_report(cfg, params, eval_dir, conditions, modes, gifs=0)
    summaries = results[k, n] = {(s.condition, s.mode): s for s in done}
    rows += cell_rows(k, n, steps, summaries, modes, cfg.eval.seeds)
    write_tables(rows, results, modes, cfg.eval.seeds, FLAGS.workdir)


def evaluated_cells(cells, conditions, modes):
  """(rows, results, seeds) of the grid's cells whose every (condition, mode) run is stored under --workdir, in
  `k<K>_n<N>/eval/results/` (a cell's workdir) or `k<K>_n<N>/json/` (a committed copy); prints the others."""
  from adajepa_jax.errors import UsageError
  from adajepa_jax.eval import pipeline
  results, found, missing = {}, [], []
  for k, n, steps in cells:
    cell = os.path.join(FLAGS.workdir, f"k{k}_n{n}")
    paths = [{(c, m): os.path.join(folder, f"{c}__{m}.json") for c in conditions for m in modes}
             for folder in (os.path.join(cell, "eval", "results"), os.path.join(cell, "json"))]
    paths = next((p for p in paths if all(os.path.exists(f) for f in p.values())), None)
    if paths is None:
      missing.append(f"k{k}_n{n}")
      continue
    results[k, n] = {key: pipeline.read_summary(f) for key, f in paths.items()}
    found.append((k, n, steps))
  if missing:
    print(f"not evaluated (left out): {', '.join(missing)}")
  if not results:
    raise UsageError(f"no cell of the grid has every run of modes {list(modes)} under {FLAGS.workdir!r} "
                     f"(looked for k<K>_n<N>/eval/results/ and k<K>_n<N>/json/)")
  seeds = {s.seeds for cell in results.values() for s in cell.values()}
  if len(seeds) != 1:
    raise UsageError(f"the cells' runs have different numbers of seeds {sorted(seeds)}: not paired")
  seeds = seeds.pop()
  rows = [row for k, n, steps in found for row in cell_rows(k, n, steps, results[k, n], modes, seeds)]
  return rows, results, seeds


def write_tables(rows, results, modes, seeds, workdir):
  """Writes and prints data_scale.{csv,md,png} from the rows, and data_scale_claims.{csv,md} from the results
  when any claim has both of its cells."""
  from adajepa_jax.eval import report
  columns = ["shapes_k", "per_shape", "trajectories", "steps", "mode", "seen_mean", "seen_diff_mean",
             "seen_diff_boot95", "unseen_mean", "unseen_diff_mean", "unseen_diff_boot95"]
  print(report.write_table(rows, os.path.join(workdir, "data_scale"), columns))
  plot(rows, modes, os.path.join(workdir, "data_scale.png"))
  found = claims(results, modes, seeds)
  if found:
    print(report.write_table(found, os.path.join(workdir, "data_scale_claims"),
                             ["claim", "a", "b", "episodes", "a_mean", "b_mean", "diff_mean", "diff_boot95",
                              "paper"]))


if __name__ == "__main__":
  utils.run(main)
