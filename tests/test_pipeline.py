"""The evaluation pipeline end to end on the tiny PushT config: files written, tables right, resume works."""
import csv
import os
import subprocess
import sys

import re

import jax
import ml_collections
import pytest

from adajepa_jax import envs
from adajepa_jax.configs import pusht
from adajepa_jax.errors import UsageError
from adajepa_jax.eval import build, metrics, pipeline
from adajepa_jax.eval.summary import RunSummary

MODES = ["frozen", "predlast+enclast"]
CONDITIONS = ["clean", "blur", "low_mass"]   # as tests/test_mpc.py: the same programs (compilation cache hits)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  cfg = pusht.get_config("tiny")
  cfg.eval.batch_size = 6
  env = envs.make(cfg.task.name, **cfg.task.kwargs)
  params = build.world_model_for(cfg, env).init(jax.random.key(0))
  workdir = str(tmp_path_factory.mktemp("eval"))
  summaries = pipeline.evaluate_and_report(cfg, params, workdir, CONDITIONS, MODES, gifs=1, progress=False)
  return cfg, params, workdir, summaries


def test_report_files(run):
  cfg, _, workdir, summaries = run
  names = ["success.csv", "success.md"]
  for c in CONDITIONS:
    names += [f"success_curve_{c}.png", f"gifs/{c}__frozen_0.gif", f"results/{c}__predlast+enclast.json"]
  for name in names:
    assert os.path.getsize(os.path.join(workdir, name)) > 0, name
  with open(os.path.join(workdir, "success.csv")) as f:
    rows = list(csv.DictReader(f))
  assert [(r["condition"], r["mode"]) for r in rows] == [(c, m) for c in CONDITIONS for m in MODES]
  for row, s in zip(rows, summaries):
    assert int(row["episodes"]) == cfg.eval.seeds * cfg.eval.episodes
    assert float(row["success_any_mean"]) == pytest.approx(s.success_any.mean)
    assert 0.0 <= float(row["success_any_mean"]) <= 100.0
    assert len(s.curve) == cfg.eval.replans
    assert s.evaluated_with == CONDITIONS   # one program per mode ran the three conditions
    assert len(s.episodes["success_any"]) == cfg.eval.seeds * cfg.eval.episodes
    within = metrics.success_within(s.episodes["first_success"], cfg.eval.replans)
    assert within.tolist() == s.episodes["success_any"]
    assert set(s.final_error_p50) >= {"agent_error", "block_error", "angle_error"}
    # The proprio term's share of the chosen plans' cost, from the per-replan terms the summary keeps.
    proprio, visual = sum(s.plan_proprio_cost), sum(s.plan_visual_cost)
    assert s.proprio_cost_share == pytest.approx(proprio / (proprio + visual), rel=1e-4)
    assert 0.0 < s.proprio_cost_share < 1.0
    assert float(row["proprio_cost_pct"]) == pytest.approx(100 * s.proprio_cost_share)
    assert s.eval_seed == cfg.eval.seed and s.commit
    if s.mode != "frozen":   # the paired difference against frozen on the same episodes
      f = next(x for x in summaries if x.condition == s.condition and x.mode == "frozen")
      expected = metrics.paired_difference(s.episodes["success_any"], f.episodes["success_any"], cfg.eval.seeds)
      assert float(row["diff_vs_frozen_mean"]) == pytest.approx(expected["mean"])
    # The file is the summary: read back, it is equal field for field.
    path = os.path.join(workdir, "results", f"{s.condition}__{s.mode}.json")
    assert pipeline.read_summary(path) == s


def test_resume_skips_finished_runs(run, monkeypatch):
  cfg, params, workdir, summaries = run

  def fail(*args, **kwargs):
    raise AssertionError("a finished (condition, mode) was evaluated again")

  monkeypatch.setattr(pipeline, "run_conditions", fail)
  again = pipeline.evaluate_and_report(cfg, params, workdir, CONDITIONS, MODES, progress=False)
  assert again == summaries
  # A frozen run does not depend on the adaptation settings: changing them still resumes it.
  other_lr = ml_collections.ConfigDict(cfg.to_dict())
  other_lr.adapt.lr_predictor = 0.5
  assert pipeline.evaluate_and_report(other_lr, params, workdir, CONDITIONS, ["frozen"], progress=False) == [
      s for s in summaries if s.mode == "frozen"]


@pytest.mark.parametrize("key, value, message", [
    ("eval.seed", 7, "eval_seed: 0 vs 7"),
    ("plan.proprio_weight", 3.0, "settings.plan.proprio_weight"),
    ("adapt.lr_predictor", 0.5, "settings.adapt.lr_predictor: None vs 0.5"),
])
def test_resume_refuses_a_run_of_other_settings(run, monkeypatch, key, value, message):
  """A workdir holding a finished run with other episodes or settings is refused, naming the difference,
  before anything runs (it would otherwise be reused and paired as if it were this run)."""
  cfg, params, workdir, _ = run
  monkeypatch.setattr(pipeline, "run_conditions", lambda *a, **k: pytest.fail("ran before the check"))
  changed = ml_collections.ConfigDict(cfg.to_dict())
  section, field = key.split(".")
  changed[section][field] = value
  with pytest.raises(UsageError, match=re.escape(message)):
    pipeline.evaluate_and_report(changed, params, workdir, CONDITIONS, MODES, progress=False)


def test_bad_input_fails_before_any_work(tmp_path):
  cfg = pusht.get_config("tiny")
  with pytest.raises(ValueError, match="does not apply"):
    pipeline.evaluate_and_report(cfg, {}, str(tmp_path), ["unseen_layouts"], MODES)
  cfg.adapt.buffer_weighting = "merged"
  cfg.adapt.buffer = "hard"
  with pytest.raises(ValueError, match="'hard' policy"):
    pipeline.evaluate_and_report(cfg, {}, str(tmp_path), ["clean"], MODES)
  cfg = pusht.get_config("tiny")
  with pytest.raises(ValueError, match="valid specs"):
    pipeline.evaluate_and_report(cfg, {}, str(tmp_path), ["clean"], ["frozen", "predmiddle"])
  assert not os.listdir(tmp_path)


@pytest.mark.slow
def test_quickstart_end_to_end(tmp_path):
  """README's main job on the tiny config: data -> train -> frozen vs adaptive -> REPORT.md."""
  root = os.path.dirname(os.path.dirname(__file__))
  cmd = [sys.executable, os.path.join(root, "experiments", "quickstart.py"),
         f"--config={os.path.join(root, 'adajepa_jax', 'configs', 'pusht.py')}:tiny",
         f"--workdir={tmp_path}", "--shifts=clean", "--config.eval.episodes=2",
         "--config.eval.seeds=2"]
  subprocess.run(cmd, check=True, cwd=root)
  report = (tmp_path / "REPORT.md").read_text()
  assert "Frozen vs adaptive" in report and "predlast+enclast" in report


def test_paired_differences_between_modes_on_known_outcomes(tmp_path):
  """Hand-made outcomes, 2 seeds x 5 episodes: B wins 2 episodes more than A (+20 points) and A one more
  than frozen; the tables report those paired differences."""
  frozen = [0, 0, 1, 0, 1, 0, 1, 0, 0, 1]
  a = [1, 0, 1, 0, 1, 0, 1, 0, 0, 1]
  b = [1, 1, 1, 0, 1, 0, 1, 1, 0, 1]

  def summary(mode, outcomes):
    mean = 100.0 * sum(outcomes) / len(outcomes)
    stat = {"mean": mean, "ci95": 0.0, "per_seed": [], "episodes": 10}
    return RunSummary.from_json({
        "condition": "clean", "mode": mode, "planner": "cem", "replans": 2, "seeds": 2, "episodes_per_seed": 5,
        "success_any": stat, "success_final": stat, "skipped_steps": 0, "curve": [0.0, mean],
        "episodes": {"success_any": outcomes, "success_final": outcomes}})

  summaries = [summary("frozen", frozen), summary("A", a), summary("B", b)]
  pipeline._write_outputs(str(tmp_path), summaries, ["clean"])
  with open(tmp_path / "success.csv") as f:
    diffs = {r["mode"]: r["diff_vs_frozen_mean"] for r in csv.DictReader(f)}
  assert float(diffs["A"]) == pytest.approx(10.0) and float(diffs["B"]) == pytest.approx(30.0)
  with open(tmp_path / "paired_modes.csv") as f:
    (row,) = list(csv.DictReader(f))
  assert row["difference"] == "B - A" and int(row["episodes"]) == 10
  assert float(row["diff_mean"]) == pytest.approx(20.0)   # per seed: +20, +20
  assert float(row["diff_ci95"]) == pytest.approx(0.0)
  assert "B - A" in (tmp_path / "paired_modes.md").read_text()


def test_an_env_other_than_the_models_is_refused():
  """A stored config carries its checkpoint's obs_spec; an env with other observations is a UsageError that
  names both specs (here: 32 px frames for a model trained on 16 px ones)."""
  import ml_collections
  from adajepa_jax import envs, models
  from adajepa_jax.configs import pusht
  from adajepa_jax.errors import UsageError
  from adajepa_jax.eval import build
  cfg = pusht.get_config("tiny")
  env = envs.make(cfg.task.name, **cfg.task.kwargs)
  spec = models.obs_spec(env.image_size, env.proprio_size, env.action_size * cfg.data.frameskip,
                         cfg.data.history)
  cfg.checkpoint = ml_collections.ConfigDict({"workdir": "w", "step": 1, "obs_spec": spec})
  assert build.world_model_for(cfg, env).action_size == spec["action_size"]
  other = envs.make(cfg.task.name, **dict(cfg.task.kwargs, image_size=2 * env.image_size))
  with pytest.raises(UsageError, match=r"trained on observations .*'image_size': %d.* gives .*'image_size': %d"
                     % (env.image_size, 2 * env.image_size)):
    build.world_model_for(cfg, other)
