"""Typed evaluation records: mode parsing, the run summary's file format, and provenance checks."""
import json

import pytest

from adajepa_jax.errors import UsageError
from adajepa_jax.eval.summary import Mode, Provenance, RunSummary, check_resumable, check_same_episodes


def test_mode_parse():
  assert Mode.parse("frozen") == Mode("frozen") and not Mode.parse("frozen").adapts
  assert Mode.parse("oracle_mujoco") == Mode("oracle", physics="mujoco")
  m = Mode.parse("predlastblock+enclast")
  assert (m.kind, m.spec, m.adapts, str(m)) == ("adaptive", "predlastblock+enclast", True, "predlastblock+enclast")
  assert [str(Mode.parse(n)) for n in ("frozen", "oracle", "oracle_mujoco", "lora")] == [
      "frozen", "oracle", "oracle_mujoco", "lora"]
  with pytest.raises(UsageError, match=r"Unknown mode 'frozn'.*'frozen', 'oracle', 'oracle_mujoco'.*valid specs"):
    Mode.parse("frozn")


def _file(**changes):
  stat = {"mean": 50.0, "ci95": 4.0, "per_seed": [48.0, 52.0], "episodes": 4}
  d = {"condition": "blur", "mode": "predlast+enclast", "planner": "cem", "replans": 3, "seeds": 2,
       "episodes_per_seed": 2, "eval_seed": 2,
       "settings": {"plan": {"proprio_weight": 1.0}, "adapt": {"lr_predictor": None}, "checkpoint": None},
       "success_any": stat, "success_final": stat, "curve": [0.0, 25.0, 50.0], "pred_error_before": [1.0] * 3,
       "pred_error_after": [0.5] * 3, "skipped_steps": 0, "seconds": 1.5, "evaluated_with": ["clean", "blur"],
       "episodes": {"success_any": [1, 0, 0, 1], "first_success": [2, -1, -1, 0]}, "final_error_p50": {},
       "error_curve": {}, "plan_cost": [1.0] * 3, "plan_visual_cost": [0.5] * 3, "plan_proprio_cost": [0.5] * 3,
       "proprio_cost_share": 0.5, "commit": "abc1234", "variant": "base"}
  d.update(changes)
  return d


def test_run_summary_json_round_trip():
  d = _file()
  s = RunSummary.from_json(json.loads(json.dumps(d)))
  assert s.success_any.per_seed == [48.0, 52.0] and s.extra == {"variant": "base"} and s.success_sym_any is None
  assert s.to_json() == d
  with pytest.raises(UsageError, match="missing seeds"):
    RunSummary.from_json({k: v for k, v in d.items() if k != "seeds"})


def test_provenance_checks_name_every_difference():
  s = RunSummary.from_json(_file())
  same = Provenance(condition="blur", mode="predlast+enclast", eval_seed=2, seeds=2, episodes_per_seed=2,
                    replans=3, settings={"plan": {"proprio_weight": 1.0}, "adapt": {"lr_predictor": None},
                                         "checkpoint": None})
  check_resumable(s, same, "x.json")
  other = Provenance(**{**same.__dict__, "replans": 5,
                        "settings": {**same.settings, "adapt": {"lr_predictor": 0.1}}})
  with pytest.raises(UsageError, match=r"x.json holds a run with other settings than this one \(replans: 3 vs 5; "
                                       r"settings.adapt.lr_predictor: None vs 0.1\)"):
    check_resumable(s, other, "x.json")
  # Pairing needs the same episodes only; an older file without its seed is refused, not guessed.
  check_same_episodes(RunSummary.from_json(_file(mode="frozen", settings={"plan": {}})), s)
  with pytest.raises(UsageError, match="differ in eval_seed: 0 vs 2"):
    check_same_episodes(RunSummary.from_json(_file(eval_seed=0)), s)
  with pytest.raises(UsageError, match="lacks its evaluation seed"):
    check_same_episodes(RunSummary.from_json({k: v for k, v in _file().items() if k != "eval_seed"}), s)


def test_settings_recorded_by_older_code_take_todays_defaults():
  """A run recorded before an adapt / plan option existed resumes as a run at that option's default (how the
  older code behaved), and is refused against a run that sets it otherwise."""
  s = RunSummary.from_json(_file())   # its adapt settings: {lr_predictor: None}, no optimizer / guard keys
  same = Provenance(condition="blur", mode="predlast+enclast", eval_seed=2, seeds=2, episodes_per_seed=2,
                    replans=3, settings={"plan": {"proprio_weight": 1.0},
                                         "adapt": {"lr_predictor": None, "optimizer": "adam", "guard": False},
                                         "checkpoint": None})
  check_resumable(s, same, "x.json")
  guarded = Provenance(**{**same.__dict__, "settings": {**same.settings, "adapt": {"lr_predictor": None,
                                                                                   "guard": True}}})
  with pytest.raises(UsageError, match=r"settings.adapt.guard: False vs True"):
    check_resumable(s, guarded, "x.json")
