"""Typed evaluation records: a `Mode` (what plans and adapts) and a `RunSummary` (one condition x mode run).

`Mode.parse("predlast+enclast")` is the one place a mode string is interpreted; `RunSummary` is the one place a
run's results are named, written (`to_json`) and read back (`from_json`). A summary records its provenance
(`Provenance`: condition, mode, episodes, evaluation seed, the plan / adapt / checkpoint settings, the code's
commit); resuming and pairing compare provenances and refuse a mismatch (`check_resumable`,
`check_same_episodes`), so a rerun with a changed setting never silently reuses or pairs other runs.

Example:
  s = RunSummary.from_json(json.load(open("results/clean__frozen.json")))
  s.success_any.mean, s.episodes["success_any"][:5], s.provenance().eval_seed
"""
import dataclasses
import functools
import subprocess
from typing import Any, Optional

from adajepa_jax.errors import UsageError

FROZEN = "frozen"
# Oracle mode name -> the physics of its planning rollouts (`mpc.make_oracle_episode`).
ORACLE_PHYSICS = {"oracle": "mjx", "oracle_mujoco": "mujoco"}


@dataclasses.dataclass(frozen=True)
class Mode:
  """A parsed mode: kind 'frozen' | 'adaptive' | 'oracle'; spec: the adaptation spec (adaptive only);
  physics: the oracle's rollout physics (oracle only). `str(mode)` is the name it was parsed from."""
  kind: str
  spec: Optional[str] = None
  physics: Optional[str] = None

  @classmethod
  def parse(cls, name: str) -> "Mode":
    """'frozen', 'oracle' / 'oracle_mujoco', or an adaptation spec ('predlast+enclast', 'lora', ...).
    Raises UsageError naming the valid choices for anything else."""
    if name == FROZEN:
      return cls("frozen")
    if name in ORACLE_PHYSICS:
      return cls("oracle", physics=ORACLE_PHYSICS[name])
    from adajepa_jax import adaptation
    try:
      adaptation.parse(name)
    except UsageError as e:
      raise UsageError(f"Unknown mode {name!r}: valid modes are 'frozen', "
                       f"{', '.join(repr(o) for o in ORACLE_PHYSICS)} or an adaptation spec ({e})") from e
    return cls("adaptive", spec=name)

  @property
  def adapts(self) -> bool:
    return self.kind == "adaptive"

  def __str__(self) -> str:
    if self.kind == "adaptive":
      return self.spec
    if self.kind == "oracle":
      return next(n for n, p in ORACLE_PHYSICS.items() if p == self.physics)
    return FROZEN


@dataclasses.dataclass(frozen=True)
class Stat:
  """Success (%) over seeds: mean, 95% t-CI half-width (nan for one seed), per-seed means, episode count."""
  mean: float
  ci95: float
  per_seed: list
  episodes: int


@dataclasses.dataclass(frozen=True)
class Provenance:
  """What makes two runs the same run: their episodes (condition, evaluation seed, seeds, episodes per seed,
  replans), the mode, and the settings its outcomes depend on (plan; adapt for adaptive modes; checkpoint)."""
  condition: str
  mode: str
  eval_seed: int
  seeds: int
  episodes_per_seed: int
  replans: int
  settings: dict

  EPISODE_FIELDS = ("condition", "eval_seed", "seeds", "episodes_per_seed", "replans")

  def differences(self, other: "Provenance", fields=None) -> list[str]:
    """'field: mine vs other' for each differing field (settings compared key by key)."""
    out = []
    for f in fields or [f.name for f in dataclasses.fields(self)]:
      a, b = getattr(self, f), getattr(other, f)
      if f == "settings":
        a, b = _with_defaults(a), _with_defaults(b)
        for k in sorted(set(a) | set(b)):
          out += [f"settings.{p}" for p in _dict_diff(a.get(k), b.get(k), k)]
      elif a != b:
        out.append(f"{f}: {a!r} vs {b!r}")
    return out


def _with_defaults(settings: dict) -> dict:
  """`settings` with the plan / adapt keys a run recorded by older code lacks (options added since) set to
  today's defaults, which is how that code behaved; other keys are kept as recorded."""
  from adajepa_jax.configs import base
  defaults = {"plan": base.plan_config().to_dict(), "adapt": base.adapt_config().to_dict()}
  out = dict(settings)
  for section, default in defaults.items():
    if isinstance(out.get(section), dict):
      out[section] = {**{k: v for k, v in default.items() if k not in out[section]}, **out[section]}
  return out


def _dict_diff(a, b, prefix):
  if isinstance(a, dict) and isinstance(b, dict):
    return [d for k in sorted(set(a) | set(b)) for d in _dict_diff(a.get(k), b.get(k), f"{prefix}.{k}")]
  return [] if a == b else [f"{prefix}: {a!r} vs {b!r}"]


def run_settings(cfg) -> dict:
  """The settings recorded with a run: plan, adapt and the checkpoint (workdir and step)."""
  return {"plan": cfg.plan.to_dict(), "adapt": cfg.adapt.to_dict(),
          "checkpoint": ({"workdir": cfg.checkpoint.workdir, "step": cfg.checkpoint.step}
                         if "checkpoint" in cfg else None)}


def _relevant(settings: dict, mode: str) -> dict:
  """The recorded settings a mode's outcomes depend on: a frozen or oracle run does not read `adapt`."""
  return {k: v for k, v in settings.items() if k != "adapt" or Mode.parse(mode).adapts}


def expected_provenance(cfg, condition: str, mode: Mode) -> Provenance:
  """The provenance a run of `condition` x `mode` under config `cfg` (the mode's config,
  `build.mode_config`) will record."""
  return Provenance(condition=condition, mode=str(mode), eval_seed=cfg.eval.seed, seeds=cfg.eval.seeds,
                    episodes_per_seed=cfg.eval.episodes, replans=cfg.eval.replans,
                    settings=_relevant(run_settings(cfg), str(mode)))


@functools.lru_cache(maxsize=1)
def code_commit() -> str:
  """The git commit of the code that runs ('+dirty' with uncommitted changes), or 'unknown' outside git."""
  import os
  here = os.path.dirname(os.path.abspath(__file__))
  try:
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                         check=True, timeout=10).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return sha + ("+dirty" if dirty else "")
  except (OSError, subprocess.SubprocessError):
    return "unknown"


@dataclasses.dataclass
class RunSummary:
  """One condition x mode run over `seeds x episodes_per_seed` episodes (written as
  `<workdir>/results/<condition>__<mode>.json`).

  episodes: per-episode outcomes, seed-major, for paired comparisons: 'success_any', 'success_final',
    'first_success' (first successful replan, -1 never), and 'success_sym_any' / 'first_success_sym' for symmetric shapes.
  curve: success reached by each replan (%); pred_error_*: one-step loss per replan (mean over episodes);
  final_error_p50 / error_curve: env errors (median at the last replan; mean per replan);
  plan_*cost: the chosen plans' cost and its visual / proprio terms per replan; proprio_cost_share: the
  proprio term's share of the chosen plans' cost; evaluated_with: the conditions run in the same program;
  commit: the code that produced it; host: the machine (`utils.host_info`: CPU, jax, XLA flags; floats
  differ between CPUs); extra: app-specific fields (e.g. levers' variant and overrides).
  """
  condition: str
  mode: str
  planner: str
  replans: int
  seeds: int
  episodes_per_seed: int
  eval_seed: Optional[int]
  settings: Optional[dict]
  success_any: Stat
  success_final: Stat
  curve: list
  pred_error_before: list
  pred_error_after: list
  skipped_steps: int
  seconds: float
  evaluated_with: list
  episodes: dict
  final_error_p50: dict
  error_curve: dict
  plan_cost: list
  plan_visual_cost: list
  plan_proprio_cost: list
  proprio_cost_share: float = float("nan")
  success_sym_any: Optional[Stat] = None
  commit: Optional[str] = None
  host: Optional[dict] = None
  extra: dict = dataclasses.field(default_factory=dict)

  STATS = ("success_any", "success_final", "success_sym_any")

  def to_json(self) -> dict:
    """A JSON-ready dict (the file format: the fields by name, `extra` merged in, None fields left out)."""
    d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
    for k in self.STATS:
      if d[k] is not None:
        d[k] = dataclasses.asdict(d[k])
    d = {k: v for k, v in d.items() if v is not None}
    return {**d, **self.extra}

  @classmethod
  def from_json(cls, d: dict) -> "RunSummary":
    """Reads `to_json`'s dict; files written by older code lack eval_seed / settings / commit (None)."""
    names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    missing = [n for n in ("condition", "mode", "replans", "seeds", "episodes_per_seed", "success_any")
               if n not in d]
    if missing:
      raise UsageError(f"Not a run summary: missing {', '.join(missing)}")
    kw: dict[str, Any] = {k: v for k, v in d.items() if k in names}
    for k in cls.STATS:
      if kw.get(k) is not None:
        kw[k] = Stat(**kw[k])
    for k in ("eval_seed", "settings"):
      kw.setdefault(k, None)
    for k, empty in (("curve", []), ("pred_error_before", []), ("pred_error_after", []), ("skipped_steps", 0),
                     ("seconds", float("nan")), ("evaluated_with", []), ("episodes", {}),
                     ("final_error_p50", {}), ("error_curve", {}), ("plan_cost", []), ("plan_visual_cost", []),
                     ("plan_proprio_cost", []), ("planner", "?"), ("success_final", kw["success_any"])):
      kw.setdefault(k, empty)
    return cls(**kw, extra={k: v for k, v in d.items() if k not in names})

  def provenance(self) -> Provenance:
    """This run's provenance; UsageError when the file (older code) did not record it."""
    if self.eval_seed is None or self.settings is None:
      raise UsageError(f"Run {self.condition}__{self.mode} lacks its evaluation seed or settings (written by "
                       "older code): cannot tell which episodes and settings it ran; re-run it")
    return Provenance(condition=self.condition, mode=self.mode, eval_seed=self.eval_seed, seeds=self.seeds,
                      episodes_per_seed=self.episodes_per_seed, replans=self.replans,
                      settings=_relevant(self.settings, self.mode))


def check_resumable(found: RunSummary, expected: Provenance, path: str) -> None:
  """Raises UsageError unless the run found at `path` is the run `expected` describes (same episodes, mode and
  settings), naming every difference."""
  diffs = found.provenance().differences(expected)
  if diffs:
    raise UsageError(f"{path} holds a run with other settings than this one ({'; '.join(diffs)}): use another "
                     "--workdir, or delete the file to re-run it")


def check_same_episodes(summary: RunSummary, baseline: RunSummary, across_conditions: bool = False) -> None:
  """Raises UsageError unless two runs ran the same episodes (condition, evaluation seed, seeds, episodes per
  seed and replan budget), so that their per-episode outcomes may be paired. `across_conditions`: the condition
  may differ (every condition of an evaluation seed plays the same episode keys, `mpc.with_conditions`, so the
  pair measures the shift's effect on the same scenes)."""
  fields = [f for f in Provenance.EPISODE_FIELDS if not (across_conditions and f == "condition")]
  diffs = summary.provenance().differences(baseline.provenance(), fields)
  if diffs:
    raise UsageError(f"Runs {summary.condition}__{summary.mode} and {baseline.condition}__{baseline.mode} "
                     f"differ in {'; '.join(diffs)}: a paired comparison needs the same episodes")
