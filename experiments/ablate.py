"""Adaptation settings as one compiled program: a grid of adapted layer sets x buffers x learning-rate scales x
adaptation steps per replan (traced per-episode settings, `make_episode(settings=...)`), each cell paired with
the frozen model on the same episodes; config overrides that cannot be traced (optimiser reset, ...) are
variants, one program each. Layer sets that adapt the encoder trunk (e.g. encfirst) run in a second program,
so that the cells which keep the trunk frozen keep their cached trunk features (`trunk_groups`).

  python experiments/ablate.py --config=adajepa_jax/configs/stored.py:workdirs/pushobj_base \
      --workdir=workdirs/pushobj_base/ablate --shifts=shape_T,shape_square --lr_scales=0.2,1,2,5 --steps=1,2,4 \
      --variants="recent5:;no_reset:adapt.reset_optimizer=False;merged:adapt.buffer_weighting='merged'"
  python experiments/ablate.py ... --specs=predlast+enclast,predfirst+enclast,predlast --lr_scales=1 --steps=1
  python experiments/ablate.py ... --buffers=recent:5,hard:5,none,unbounded,recent:5:merged --lr_scales=1 --steps=1
  python experiments/ablate.py ... --shifts=shape_T,shape_L,shape_I --families="seen:shape_T+shape_L;unseen:shape_I"

The learning rates are the config's (`adaptation.learning_rates`: by default the training rates) times each
scale, for the predictor and the encoder alike. Episodes: `config.eval.seeds x config.eval.episodes` per
shift (the evaluation seed `config.eval.seed`), the same for every cell and for frozen. Writes
<workdir>/runs/<variant>.json (per-episode success of every cell; frozen.json for the baseline; reused on a
rerun with the same settings, so an interrupted grid resumes by variant), ablate.{csv,md} (one row per variant,
shift and cell, and with several shifts also per cell on shift 'pooled', every shift's episodes pooled per
seed, and per `--families` group likewise: success, paired difference vs frozen with its t and bootstrap 95%
intervals, and vs the default cell of
the first variant: lr scale 1 with the config's `adapt.steps`, the config's layer set and buffer where the grid
has them; so a variant's cells are compared with the default setting too) and
ablate_<variant>.png (heatmaps of the paired gain over lr scale x steps, one per shift, spec and buffer).
"""
import json
import os

from absl import flags
from ml_collections import config_flags

from adajepa_jax import utils

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "adajepa_jax/configs/stored.py:<training workdir>.")
flags.DEFINE_string("workdir", None, "Where the runs, the table and the heatmaps go.")
flags.DEFINE_list("shifts", ["clean"], "Shift conditions; they must build the same env (one program).")
flags.DEFINE_list("specs", [], "Adapted layer sets (adaptation specs), a grid dimension too (traced as update "
                  "masks within their union). Default: the config's adapt.spec.")
flags.DEFINE_list("buffers", [], "Buffers `policy[:size][:weighting]` (e.g. recent:5, hard:5, none, unbounded, "
                  "recent:5:merged), a grid dimension (traced: one buffer of the largest size). Default: the "
                  "config's buffer.")
flags.DEFINE_list("lr_scales", ["0.2", "1", "2", "5"], "Learning-rate multipliers (traced: one program).")
flags.DEFINE_list("steps", ["1", "2", "4"], "Adaptation steps per replan (traced, masked within the largest).")
flags.DEFINE_string("families", "", "';'-separated `name:shift+shift` groups of --shifts whose episodes are also "
                    "pooled per seed as rows of shift `name` (e.g. seen:shape_T+shape_L;unseen:shape_I+shape_square). "
                    "With several shifts, `pooled` (all of them) is always added.")
flags.DEFINE_string("variants", "base:", "';'-separated `name:key=value,key=value` config overrides that "
                    "cannot be traced; one program each.")
flags.mark_flags_as_required(["config", "workdir"])


def parse_grid():
  """(lr_scales [float], steps [int]) from the flags; UsageError naming a bad value."""
  from adajepa_jax.errors import UsageError
  try:
    scales = [float(x) for x in FLAGS.lr_scales]
    steps = [int(x) for x in FLAGS.steps]
  except ValueError:
    raise UsageError(f"--lr_scales must be numbers and --steps integers, got {FLAGS.lr_scales} and "
                     f"{FLAGS.steps}") from None
  if not scales or min(scales) <= 0:
    raise UsageError(f"--lr_scales={','.join(FLAGS.lr_scales)}: each must be > 0")
  if not steps or min(steps) < 1:
    raise UsageError(f"--steps={','.join(FLAGS.steps)}: each must be >= 1")
  return scales, steps


def parse_buffers(config):
  """{label: {buffer, buffer_size, buffer_weighting}} from --buffers (sizes and weightings default to the
  config's), or None without the flag; UsageError naming a bad item."""
  from adajepa_jax import adaptation
  from adajepa_jax.errors import UsageError
  if not FLAGS.buffers:
    return None
  out = {}
  for item in FLAGS.buffers:
    parts = item.split(":")
    if len(parts) > 3 or not parts[0]:
      raise UsageError(f"--buffers item {item!r}: expected policy[:size][:weighting], e.g. hard:5 or "
                       "recent:5:merged")
    policy = parts[0]
    try:
      size = int(parts[1]) if len(parts) > 1 and parts[1] else int(config.adapt.buffer_size)
    except ValueError:
      raise UsageError(f"--buffers item {item!r}: the size {parts[1]!r} must be an integer") from None
    weighting = parts[2] if len(parts) > 2 else config.adapt.buffer_weighting
    adaptation.check_buffer(policy, weighting)
    if size < 1:
      raise UsageError(f"--buffers item {item!r}: the size must be >= 1")
    out[item] = {"buffer": policy, "buffer_size": size, "buffer_weighting": weighting}
  return out


def parse_families(text, shift_names):
  """'seen:a+b;unseen:c' -> {'seen': [0, 1], 'unseen': [2]} (indexes into `shift_names`); UsageError naming a
  malformed item or a shift not in --shifts."""
  from adajepa_jax.errors import UsageError
  families = {}
  for item in filter(None, (i.strip() for i in text.split(";"))):
    name, sep, members = item.partition(":")
    members = [m.strip() for m in members.split("+") if m.strip()]
    if not sep or not name.strip() or not members or name.strip() in (POOLED, *shift_names):
      raise UsageError(f"--families item {item!r}: expected name:shift+shift, a name other than {POOLED!r} and "
                       "the shifts'")
    unknown = [m for m in members if m not in shift_names]
    if unknown:
      raise UsageError(f"--families item {item!r}: {', '.join(unknown)} not in --shifts "
                       f"({', '.join(shift_names)})")
    families[name.strip()] = [shift_names.index(m) for m in members]
  return families


def run_settings(config, specs, variant, overrides, scales, steps, buffers=None):
  """What a run's outcomes depend on (a rerun with other settings does not reuse it)."""
  from adajepa_jax.eval import summary
  return json.loads(json.dumps({
      "shifts": list(FLAGS.shifts), "specs": specs, "variant": variant, "overrides": overrides,
      "buffers": buffers, "lr_scales": scales, "steps": steps, "eval_seed": config.eval.seed,
      "seeds": config.eval.seeds,
      "episodes": config.eval.episodes, "replans": config.eval.replans, **summary.run_settings(config)},
      default=str))


def cells(specs, buffers, scales, steps):
  """The grid's cells (spec, buffer label, lr scale, steps), spec-major; buffer label 'config' without
  --buffers."""
  return [(p, b, s, n) for p in specs for b in (buffers or ["config"]) for s in scales for n in steps]


def run_grid(config, params, specs, scales, steps, buffers=None):
  """success_any int[G, C, E] of the grid (G = `cells`; specs None: frozen, G = 1)."""
  import jax.numpy as jnp
  import numpy as np
  from tqdm import tqdm

  from adajepa_jax import adaptation
  from adajepa_jax.envs import shifts
  from adajepa_jax.eval import build
  from adajepa_jax.mpc import episode_keys, evaluate, make_episode, with_conditions
  conditions = shifts.same_env(FLAGS.shifts)
  env = conditions[0].task_env(config.task.name, **config.task.kwargs)
  cfg = build.mode_config(config, "frozen" if specs is None else specs[0])
  settings = None
  if specs is not None:
    lr_p, lr_e = adaptation.learning_rates(cfg)
    settings = [adaptation.setting_of(cfg, lr_predictor=s * lr_p, lr_encoder=s * lr_e, steps=n,
                                      **({"spec": p} if len(specs) > 1 else {}), **(buffers or {}).get(b, {}))
                for p, b, s, n in cells(specs, buffers, scales, steps)]
  program = make_episode(env, build.world_model_for(config, env), cfg, conditions, record_frames=False,
                         settings=settings)
  g = 1 if settings is None else len(settings)
  keys, condition_ids = with_conditions(episode_keys(config.eval.seed, config.eval.seeds, config.eval.episodes),
                                        len(conditions))                                    # [C * E]
  n = keys.shape[0]
  with tqdm(total=g * n, desc="frozen" if specs is None else f"{g} settings", unit="episode") as bar:
    result = evaluate(program, params, jnp.tile(keys, g), np.tile(condition_ids, g),
                      batch_size=config.eval.batch_size, setting_ids=np.repeat(np.arange(g), n),
                      progress=bar.update)
  return np.asarray(result.success_any).reshape(g, len(conditions), -1).astype(int)


POOLED = "pooled"   # the shift name of the rows that pool every shift's episodes per seed


def trunk_groups(config, params, specs):
  """The specs split into programs: those that keep the encoder trunk frozen, then those that adapt it.

  A grid program adapts the union of its specs, so one spec adapting the trunk (e.g. encfirst) makes every cell
  re-encode its frames and carry per-episode conv kernels, several times slower per episode (measured on the
  maze: 2.9 s instead of about 0.3 s). Returns [[spec]] (non-empty groups, each in the order of `specs`)."""
  import jax

  from adajepa_jax import adaptation
  from adajepa_jax.eval import build

  def adapts_trunk(p):
    cfg = build.mode_config(config, p)
    shapes = jax.eval_shape(lambda: adaptation.add_adapters(cfg, params, jax.random.key(0)))
    return adaptation.adapts_encoder_trunk(adaptation.resolve(p, shapes))
  trunk = {p: adapts_trunk(p) for p in specs}
  return [g for g in ([p for p in specs if not trunk[p]], [p for p in specs if trunk[p]]) if g]


def run_specs(config, params, specs, scales, steps, buffers=None):
  """success_any int[G, C, E] of the grid (G = `cells`), one program per `trunk_groups` group."""
  import numpy as np
  per_spec = len(buffers or [1]) * len(scales) * len(steps)   # cells are spec-major
  outcomes = {}
  groups = trunk_groups(config, params, specs)
  for number, group in enumerate(groups, 1):
    print(f"program {number} of {len(groups)}: {', '.join(group)}", flush=True)
    grid = run_grid(config, params, group, scales, steps, buffers)
    outcomes.update({p: grid[k * per_spec:(k + 1) * per_spec] for k, p in enumerate(group)})
  return np.concatenate([outcomes[p] for p in specs])


def table_rows(frozen, grids, config, shift_names, specs, buffers, scales, steps, default_buffer=None,
               families=None):
  """One row per variant, shift and cell: success (t 95% over seeds), the paired difference vs frozen, and
  the paired difference vs the default cell of the first variant (lr scale 1, the config's `adapt.steps`; the
  config's layer set when the grid has it, else the cell's own, and likewise the buffer `default_buffer`, the
  label of the config's buffer; empty for that cell itself and when the grid lacks it). With several shifts, the rows of shift
  `POOLED` follow: every shift's episodes pooled per seed (a shift family, as the paper's Fig. 8); then those
  of each of `families` ({name: shift indexes}, `parse_families`), pooled likewise.
  frozen: int[1, C, E]; grids: {variant: int[G, C, E]}."""
  import numpy as np

  from adajepa_jax.eval import metrics
  seeds = config.eval.seeds
  shifts = [(cond, frozen[0, ci], {v: g[:, ci] for v, g in grids.items()}) for ci, cond in enumerate(shift_names)]
  pool = lambda per_shift: metrics.pool_runs(list(per_shift), seeds)   # [C, S * E] -> [S * C * E]
  groups = ({POOLED: list(range(len(shift_names)))} if len(shift_names) > 1 else {}) | (families or {})
  for name, members in groups.items():   # a shift family: its episodes pooled per seed
    shifts.append((name, pool(frozen[0, members]),
                   {v: np.stack([pool(cell[members]) for cell in g]) for v, g in grids.items()}))
  grid_cells = cells(specs, buffers, scales, steps)
  index = {cell: i for i, cell in enumerate(grid_cells)}

  def default_of(p, b):
    p = config.adapt.spec if config.adapt.spec in specs else p
    b = default_buffer if default_buffer in (buffers or []) else b
    return index.get((p, b, 1.0, int(config.adapt.steps)))

  rows = []
  for cond, frozen_c, grids_c in shifts:   # frozen_c: [E]; grids_c: {variant: [G, E]}
    f = metrics.seed_summary(frozen_c, seeds)
    rows.append({"variant": "-", "shift": cond, "spec": "frozen", "buffer": "", "lr_scale": "", "steps": "",
                 "budget": f"{config.eval.replans}x1", "episodes": f["episodes"], "success_mean": f["mean"],
                 "success_ci95": f["ci95"], "diff_vs_frozen_mean": float("nan"),
                 "diff_vs_frozen_ci95": float("nan"), "diff_boot95": "", "diff_vs_default_mean": float("nan"),
                 "diff_vs_default_boot95": ""})
    first = next(iter(grids_c))
    for variant, grid in grids_c.items():
      for gi, (p, b, s, n) in enumerate(grid_cells):
        a = metrics.seed_summary(grid[gi], seeds)
        d = metrics.paired_difference(grid[gi], frozen_c, seeds)
        di = default_of(p, b)
        v = (metrics.paired_difference(grid[gi], grids_c[first][di], seeds)
             if di is not None and (variant, gi) != (first, di) else None)
        rows.append({"variant": variant, "shift": cond, "spec": p, "buffer": b, "lr_scale": s, "steps": n,
                     "budget": f"{config.eval.replans}x1", "episodes": a["episodes"], "success_mean": a["mean"],
                     "success_ci95": a["ci95"], "diff_vs_frozen_mean": d["mean"], "diff_vs_frozen_ci95": d["ci95"],
                     "diff_boot95": f"[{d['boot_lo']:.1f}, {d['boot_hi']:.1f}]",
                     "diff_vs_default_mean": float("nan") if v is None else v["mean"],
                     "diff_vs_default_boot95": "" if v is None else f"[{v['boot_lo']:.1f}, {v['boot_hi']:.1f}]"})
  return rows


def plot(rows, variant, specs, buffers, scales, steps, path):
  """Heatmaps of the paired gain vs frozen over lr scale x steps, one per shift, spec and buffer."""
  import numpy as np

  from adajepa_jax.eval import plots
  grids = {}
  for cond in FLAGS.shifts:
    for p in specs:
      for b in buffers or ["config"]:
        grid = np.full((len(scales), len(steps)), np.nan)
        for r in rows:
          if r["variant"] == variant and r["shift"] == cond and r["spec"] == p and r["buffer"] == b:
            grid[scales.index(r["lr_scale"]), steps.index(r["steps"])] = r["diff_vs_frozen_mean"]
        name = ", ".join([cond] + ([p] if len(specs) > 1 else []) + ([b] if buffers else []))
        grids[name] = grid
  plots.plot_heatmaps(grids, [f"{s:g}" for s in scales], [str(n) for n in steps], path,
                      ylabel="learning-rate scale", xlabel="adaptation steps per replan",
                      title=f"{variant}: adaptive - frozen (points)", signed=True)


def load_or_run(path, wanted, run):
  """The run stored at `path` if its settings are `wanted`, else `run()` (then stored)."""
  import numpy as np
  if os.path.isfile(path):
    with open(path) as f:
      stored = json.load(f)
    if stored["settings"] == wanted:
      print(f"reused {path}")
      return np.asarray(stored["success_any"])
    print(f"{path} has other settings; running again")
  out = run()
  with open(path, "w") as f:
    json.dump({"settings": wanted, "success_any": out.tolist()}, f)
  return out


def main(argv):
  del argv
  from adajepa_jax.configs import base
  from adajepa_jax.errors import UsageError
  from adajepa_jax.eval import build, report
  from adajepa_jax.training import checkpoint

  config = FLAGS.config
  scales, steps = parse_grid()
  buffers = parse_buffers(config)
  variants = base.parse_variants(FLAGS.variants)
  build.check_conditions(config.task.name, FLAGS.shifts)
  families = parse_families(FLAGS.families, list(FLAGS.shifts))
  try:
    from adajepa_jax.envs import shifts
    shifts.same_env(FLAGS.shifts)
  except ValueError as e:
    raise UsageError(f"--shifts: {e}") from None
  specs = list(FLAGS.specs) or [config.adapt.spec]
  for p in specs:
    if not build.parse_modes([p])[0].adapts:
      raise UsageError(f"--specs: {p!r} must be an adaptation spec (e.g. predlast+enclast), not frozen or oracle")
  configs = {name: base.apply_overrides(config, o) for name, o in variants}   # bad keys fail here, up front
  _, params, _ = checkpoint.load(None, config=config)
  runs_dir = os.path.join(FLAGS.workdir, "runs")
  os.makedirs(runs_dir, exist_ok=True)
  frozen = load_or_run(os.path.join(runs_dir, "frozen.json"),
                       run_settings(config, None, "-", {}, [], []),
                       lambda: run_grid(config, params, None, scales, steps))
  labels = None if buffers is None else list(buffers)
  grids = {}
  for name, overrides in variants:
    cfg = configs[name]
    print(f"{name}: {len(specs)} x {len(labels or [1])} x {len(scales)} x {len(steps)} settings x "
          f"{len(FLAGS.shifts)} shifts x "
          f"{cfg.eval.seeds * cfg.eval.episodes} episodes ...", flush=True)
    grids[name] = load_or_run(os.path.join(runs_dir, f"{name}.json"),
                              run_settings(cfg, specs, name, overrides, scales, steps, buffers),
                              lambda cfg=cfg: run_specs(cfg, params, specs, scales, steps, buffers))
  default_buffer = next((label for label, b in (buffers or {}).items()
                         if b == {"buffer": config.adapt.buffer, "buffer_size": int(config.adapt.buffer_size),
                                  "buffer_weighting": config.adapt.buffer_weighting}), None)
  rows = table_rows(frozen, grids, config, list(FLAGS.shifts), specs, labels, scales, steps, default_buffer,
                    families)
  columns = ["variant", "shift", "spec", "buffer", "lr_scale", "steps", "budget", "episodes", "success_mean",
             "diff_vs_frozen_mean", "diff_boot95", "diff_vs_default_mean", "diff_vs_default_boot95"]
  print(report.write_table(rows, os.path.join(FLAGS.workdir, "ablate"), columns))
  for name in grids:
    path = os.path.join(FLAGS.workdir, f"ablate_{name}.png")
    plot(rows, name, specs, labels, scales, steps, path)
    print(f"wrote {path}")


if __name__ == "__main__":
  utils.run(main)
