"""Success statistics over test seeds: mean and a 95% confidence interval (Student t over seed means)."""
import math
from typing import Any, Sequence

import numpy as np
import numpy.typing as npt
import scipy.stats

def t_quantile_975(df: int) -> float:
  """The two-sided 95% Student-t quantile t_{0.975, df} (`scipy.stats.t`)."""
  if df < 1:
    raise ValueError(f"need at least 2 seeds for a confidence interval, got df={df}")
  return float(scipy.stats.t.ppf(0.975, df))


def seed_summary(success: npt.ArrayLike, seeds: int) -> dict[str, Any]:
  """Mean success (%) and 95% CI half-width over seeds.

  Args:
    success: bool/float[seeds * episodes], seed-major (as `mpc.episode_keys` lays episodes out).
    seeds: number of test seeds.

  Returns:
    dict(mean, ci95, per_seed list, episodes) with percentages; ci95 is nan for a single seed.
  """
  success = np.asarray(success, np.float64).reshape(seeds, -1)
  per_seed = 100.0 * success.mean(axis=1)
  mean = float(per_seed.mean())
  if seeds > 1:
    ci = t_quantile_975(seeds - 1) * float(per_seed.std(ddof=1)) / math.sqrt(seeds)
  else:
    ci = float("nan")
  return {"mean": mean, "ci95": ci, "per_seed": per_seed.tolist(), "episodes": int(success.size)}


def success_curve(per_replan_success: npt.ArrayLike) -> np.ndarray:
  """Fraction of episodes that have succeeded by each replan. f32[E, R] -> f64[R] (percent)."""
  reached = np.maximum.accumulate(np.asarray(per_replan_success) > 0.5, axis=1)
  return 100.0 * reached.mean(axis=0)


def paired_difference(treated: npt.ArrayLike, control: npt.ArrayLike, seeds: int, boot: int = 2000,
                      seed: int = 0) -> dict[str, Any]:
  """Paired difference treated - control (%) on the same episodes, with two 95% intervals.

  The main estimate is the mean over seeds of the per-seed mean differences, with a Student-t interval over
  seeds; the paired bootstrap resamples episodes (the same indices for both arms) within each seed.

  Args:
    treated, control: bool/float[seeds * episodes] outcomes of the same episodes, seed-major.
    seeds: number of test seeds.
    boot: bootstrap resamples.
    seed: bootstrap RNG seed.

  Returns:
    dict(mean, ci95 (t half-width; nan for one seed), boot_lo, boot_hi, per_seed list, episodes).
  """
  t = np.asarray(treated, np.float64)
  c = np.asarray(control, np.float64)
  if t.shape != c.shape or t.ndim != 1 or t.size % seeds:
    raise ValueError(f"treated and control must be equal 1-d arrays of seeds x episodes outcomes, got "
                     f"{t.shape} and {c.shape} for seeds={seeds}")
  d = 100.0 * (t - c).reshape(seeds, -1)
  per_seed = d.mean(axis=1)
  mean = float(per_seed.mean())
  ci = (t_quantile_975(seeds - 1) * float(per_seed.std(ddof=1)) / math.sqrt(seeds)) if seeds > 1 else float("nan")
  rng = np.random.default_rng(seed)
  idx = rng.integers(0, d.shape[1], size=(boot, seeds, d.shape[1]))
  means = np.take_along_axis(np.broadcast_to(d, (boot,) + d.shape), idx, axis=2).mean(axis=(1, 2))
  lo, hi = np.percentile(means, [2.5, 97.5])
  return {"mean": mean, "ci95": ci, "boot_lo": float(lo), "boot_hi": float(hi), "per_seed": per_seed.tolist(),
          "episodes": int(t.size)}


def pool_runs(outcomes: Sequence[npt.ArrayLike], seeds: int) -> np.ndarray:
  """Outcomes of several runs (e.g. one per shape) pooled per seed: [f[seeds * E_i]] -> f[seeds * sum E_i],
  seed-major, so `seed_summary` and `paired_difference` treat the pooled episodes of a seed as one seed."""
  per_seed = [np.asarray(o, np.float64).reshape(seeds, -1) for o in outcomes]
  return np.concatenate(per_seed, axis=1).reshape(-1)


def first_success(per_replan_success: npt.ArrayLike) -> np.ndarray:
  """The first replan (0-based) at whose chunk each episode passed the test, -1 if never. f32[E, R] -> i64[E].
  `success_within(first, b)` recovers success_any at any smaller budget b: adaptation is causal, so the first
  b replans of a longer run are the run with budget b."""
  hit = np.asarray(per_replan_success) > 0.5
  return np.where(hit.any(axis=1), np.argmax(hit, axis=1), -1)


def success_within(first: npt.ArrayLike, budget: int) -> np.ndarray:
  """success_any (0/1 per episode) within the first `budget` replans, from `first_success`."""
  first = np.asarray(first)
  return ((first >= 0) & (first < int(budget))).astype(np.int64)
