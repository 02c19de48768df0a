"""Success statistics: seed summaries and paired differences on synthetic outcomes with known answers."""
import numpy as np
import pytest

from adajepa_jax.eval import metrics


def test_seed_summary_known_values():
  s = metrics.seed_summary(np.array([1, 1, 0, 0, 1, 0, 1, 1]), seeds=2)   # seeds: 50%, 75%
  assert s["per_seed"] == [50.0, 75.0] and s["mean"] == 62.5
  assert s["ci95"] == pytest.approx(12.706 * np.std([50, 75], ddof=1) / np.sqrt(2), rel=1e-4)


def test_paired_difference_known_answer():
  rng = np.random.default_rng(0)
  control = (rng.random(3 * 50) < 0.4).astype(int)
  treated = control.copy()
  flips = np.flatnonzero(control == 0)[:30]       # 10 per seed on average: +20 points in all
  treated[flips] = 1
  d = metrics.paired_difference(treated, control, seeds=3)
  per_seed = [100 * (treated[s * 50:(s + 1) * 50] - control[s * 50:(s + 1) * 50]).mean() for s in range(3)]
  assert d["per_seed"] == pytest.approx(per_seed) and d["mean"] == pytest.approx(20.0)
  assert d["ci95"] == pytest.approx(4.303 * np.std(per_seed, ddof=1) / np.sqrt(3), rel=1e-4)
  assert d["boot_lo"] < 20.0 < d["boot_hi"] and d["boot_lo"] > 0.0   # only gains: the interval excludes 0
  # Identical arms: exactly zero, with a degenerate interval; a pure loss flips the sign.
  same = metrics.paired_difference(control, control, seeds=3)
  assert same["mean"] == 0.0 and same["ci95"] == 0.0 and same["boot_lo"] == same["boot_hi"] == 0.0
  assert metrics.paired_difference(control, treated, seeds=3)["mean"] == pytest.approx(-20.0)


def test_pairing_is_tighter_than_separate_intervals():
  """Shared episode difficulty cancels in the paired difference (why every comparison is paired)."""
  rng = np.random.default_rng(1)
  easy = rng.random(3 * 100) < 0.5
  control = easy & (rng.random(300) < 0.9)
  treated = control | (easy & (rng.random(300) < 0.5))
  d = metrics.paired_difference(treated, control, seeds=3)
  width = d["boot_hi"] - d["boot_lo"]
  separate = 2 * (metrics.seed_summary(treated, 3)["ci95"] + metrics.seed_summary(control, 3)["ci95"])
  assert 0 < width < separate


def test_paired_difference_rejects_unpaired_input():
  with pytest.raises(ValueError, match="equal 1-d arrays"):
    metrics.paired_difference(np.ones(10), np.ones(12), seeds=2)


def test_first_success_and_success_within_a_smaller_budget():
  per = np.array([[0, 0, 1, 0], [0, 0, 0, 0], [1, 1, 0, 1], [0, 0, 0, 1]], np.float32)
  first = metrics.first_success(per)
  np.testing.assert_array_equal(first, [2, -1, 0, 3])
  np.testing.assert_array_equal(metrics.success_within(first, 4), per.max(axis=1))
  np.testing.assert_array_equal(metrics.success_within(first, 3), [1, 0, 1, 0])
  np.testing.assert_array_equal(metrics.success_within(first, 1), [0, 0, 1, 0])
  # The curve at replan b - 1 is the mean success within budget b.
  curve = metrics.success_curve(per)
  assert all(curve[b - 1] == 100 * metrics.success_within(first, b).mean() for b in range(1, 5))


def test_pool_runs_keeps_seeds_apart():
  a, b = [1, 0, 0, 0], [1, 1, 1, 1, 0, 0]            # 2 seeds: a has 2 episodes per seed, b 3
  pooled = metrics.pool_runs([a, b], seeds=2)
  np.testing.assert_array_equal(pooled, [1, 0, 1, 1, 1, 0, 0, 1, 0, 0])
  assert metrics.seed_summary(pooled, 2)["per_seed"] == [80.0, 20.0]


def test_t_quantiles_match_the_statistical_table():
  """t_{0.975, df} from scipy against printed table values (4 significant digits), and its normal limit."""
  for df, table in [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (29, 2.045)]:
    assert metrics.t_quantile_975(df) == pytest.approx(table, abs=6e-4)
  assert metrics.t_quantile_975(100_000) == pytest.approx(1.95996, abs=1e-4)
  with pytest.raises(ValueError, match="at least 2 seeds"):
    metrics.t_quantile_975(0)


def test_write_table_keeps_small_settings_readable(tmp_path):
  from adajepa_jax.eval import report
  rows = [{"lr_scale": s, "success_mean": 40.0, "success_ci95": 2.5} for s in (0.01, 0.03, 0.3, 1.0)]
  text = report.write_table(rows, str(tmp_path / "t"), ["lr_scale", "success_mean"])
  cells = [line.split("|")[1].strip() for line in text.splitlines()[2:]]
  assert cells == ["0.01", "0.03", "0.3", "1.0"]
  assert "40.0 ± 2.5" in text
