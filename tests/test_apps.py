"""The command-line apps print a user's mistake as one line (`error: ...`) and exit with status 2."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(script, *args):
  return subprocess.run([sys.executable, os.path.join("experiments", script), *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args, message", [
    (["--config=adajepa_jax/configs/stored.py:{tmp}/missing"], "No checkpoint found under"),
    (["--config=adajepa_jax/configs/pusht.py:tiny"], "needs a trained model's stored config"),
    (["--config=adajepa_jax/configs/pusht.py:huge"], "Unknown config scale 'huge'; valid scales"),
    (["--config=adajepa_jax/configs/pusht.py:tiny", "--config.plan.planer=gd"], "unknown config key 'planer'"),
    (["--config=adajepa_jax/configs/pusht.py:tiny", "--shifts=blurr"], "Unknown shift 'blurr'"),
])
def test_evaluate_user_errors_are_one_line(tmp_path, args, message):
  r = _run("evaluate.py", *[a.format(tmp=tmp_path) for a in args], f"--workdir={tmp_path}/eval")
  assert r.returncode == 2, r.stderr
  lines = r.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
  assert "Traceback" not in r.stderr


def test_train_without_dataset_is_one_line(tmp_path):
  """train_world_model.py on a workdir without data: the missing dataset is a user error."""
  r = _run("train_world_model.py", "--config=adajepa_jax/configs/pointmaze.py:tiny", f"--workdir={tmp_path}")
  assert r.returncode == 2 and r.stderr.strip().splitlines() == [
      f"error: No manifest.json in '{tmp_path}/data': not a dataset directory (run experiments/collect_data.py)"]


def test_evidence_needs_a_stored_config(tmp_path):
  r = _run("evidence.py", "--config=adajepa_jax/configs/pusht.py:tiny")
  assert r.returncode == 2 and r.stderr.strip().splitlines() == [
      "error: --config must be a stored config: adajepa_jax/configs/stored.py:<training workdir or checkpoint "
      "folder>"], r.stderr


def test_recollect_command_parses_to_the_manifest_settings(monkeypatch):
  """storage.recollect_command's line, parsed as collect_data.py parses it, gives the manifest's settings."""
  import shlex

  from absl import flags
  from ml_collections import config_flags

  from adajepa_jax.data import storage
  manifest = dict(task="pushobj", kwargs={"image_size": 32, "shapes": ["T", "L"]}, episodes=8, length=30,
                  seed=3, shard_episodes=4, image_size=32, expert_fraction=0.5)
  argv = shlex.split(storage.recollect_command("/tmp/run/data", manifest))[1:]
  monkeypatch.chdir(ROOT)
  monkeypatch.setattr(sys, "argv", argv)   # config_flags reads its overrides from sys.argv
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "", flag_values=fv)
  flags.DEFINE_string("workdir", None, "", flag_values=fv)
  fv(argv)
  c = fv.config
  assert (c.task.name, c.task.kwargs.to_dict(), fv.workdir) == ("pushobj", {"image_size": 32, "shapes": ("T", "L")},
                                                                 "/tmp/run")
  assert (c.data.episodes, c.data.length, c.data.seed, c.data.shard_episodes, c.data.expert_fraction) == (
      8, 30, 3, 4, 0.5)


def _summary(outcomes, **changes):
  s = {"condition": "clean", "mode": "predlast+enclast", "planner": "cem", "replans": 20, "seeds": 2,
       "episodes_per_seed": 4, "eval_seed": 0, "settings": {"plan": {}, "adapt": {}, "checkpoint": None},
       "success_any": {"mean": 100.0 * sum(outcomes) / len(outcomes), "ci95": 0.0, "per_seed": [],
                       "episodes": len(outcomes)},
       "episodes": {"success_any": outcomes}, "proprio_cost_share": 0.25}
  return dict(s, **changes)


def test_paired_runs_on_known_outcomes(tmp_path):
  """Two runs of the same 8 episodes: the second succeeds on 3 more and fails 1 more, so +25.0; a run of other
  episodes (another evaluation seed) is refused with one line before anything is written."""
  import json
  paths = {}
  for name, s in [("a", _summary([0, 0, 1, 1, 0, 1, 0, 0], pred_error_before=[1.0, 2.0, 4.0])),
                  ("b", _summary([1, 1, 1, 0, 0, 1, 1, 0], pred_error_before=[1.0, 1.0, 2.0])),
                  ("c", _summary([1] * 8, eval_seed=2))]:
    paths[name] = tmp_path / f"{name}.json"
    paths[name].write_text(json.dumps(s))
  r = _run("paired_runs.py", f"--runs=uniform:{paths['a']},merged:{paths['b']}", f"--out={tmp_path}/cmp")
  assert r.returncode == 0, r.stderr
  md = (tmp_path / "cmp.md").read_text().splitlines()
  assert md[2].startswith("| uniform | clean |") and md[3].startswith("| merged | clean |")
  assert "| 62.5 ± 158.8 | 25.0 ± 0.0 |" in md[3], md[3]   # per seed 75, 50; differences +25 and +25
  # held-out one-step error over replans 2..R: a 3.0, b 1.5, half of a's
  assert md[2].endswith("| 3.0 | 1.0 |") and md[3].endswith("| 1.5 | 0.5 |"), md[2:4]
  r = _run("paired_runs.py", f"--runs=uniform:{paths['a']},merged:{paths['b']}", f"--out={tmp_path}/cmp5",
           "--budget=5")
  assert r.returncode == 2 and "first successes" in r.stderr     # these summaries have no first_success
  r = _run("paired_runs.py", f"--runs=uniform:{paths['a']},other:{paths['c']}", f"--out={tmp_path}/bad")
  lines = r.stderr.strip().splitlines()
  assert r.returncode == 2 and len(lines) == 1 and "differ in eval_seed: 2 vs 0" in lines[0], r.stderr
  assert not (tmp_path / "bad.md").exists()
  (tmp_path / "e.json").write_text(json.dumps(_summary([1, 1, 1, 1, 0, 1, 1, 0], condition="snp1")))
  r = _run("paired_runs.py", f"--runs=clean:{paths['a']},snp1:{tmp_path / 'e.json'}", f"--out={tmp_path}/shift")
  assert r.returncode == 2 and "other conditions; --across_conditions pairs them" in r.stderr, r.stderr
  r = _run("paired_runs.py", f"--runs=clean:{paths['a']},snp1:{tmp_path / 'e.json'}", f"--out={tmp_path}/shift",
           "--across_conditions")
  assert r.returncode == 0, r.stderr
  md = (tmp_path / "shift.md").read_text().splitlines()[3]   # per seed +50 (100 vs 50) and +25 (50 vs 25)
  assert md.startswith("| snp1 | snp1 |") and "| 37.5 ± 158.8 | [12.5, 75.0] |" in md, md
  r = _run("paired_runs.py", f"--runs=uniform:{paths['a']},other:{paths['c']}", f"--out={tmp_path}/bad",
           "--across_conditions")
  assert r.returncode == 2 and "differ in eval_seed: 2 vs 0" in r.stderr, r.stderr   # other episodes still refused
  # The symmetry-aware test: b succeeds on 3 more episodes than a (per seed 100 vs 50, 50 vs 25).
  for name, sym in (("a", [0, 0, 1, 1, 0, 1, 0, 0]), ("b", [1, 1, 1, 1, 0, 1, 1, 0])):
    s = json.loads(paths[name].read_text())
    s["episodes"]["success_sym_any"] = sym
    paths[name].write_text(json.dumps(s))
  r = _run("paired_runs.py", f"--runs=a:{paths['a']},b:{paths['b']}", f"--out={tmp_path}/sym",
           "--metric=success_sym_any")
  assert r.returncode == 0, r.stderr
  assert "| success_sym_any | 75.0 ± 317.7 | 37.5 ± 158.8 |" in (tmp_path / "sym.md").read_text().splitlines()[3]
  (tmp_path / "d.json").write_text(json.dumps(_summary([1] * 8)))   # the same episodes, no symmetric test
  r = _run("paired_runs.py", f"--runs=a:{paths['a']},d:{tmp_path / 'd.json'}", f"--out={tmp_path}/nosym",
           "--metric=success_sym_any")
  assert r.returncode == 2 and "has no per-episode success_sym_any" in r.stderr, r.stderr


@pytest.mark.parametrize("args, message", [
    (["--shapes_k=5"], "--shapes_k=5: K must be in 1..4"),
    (["--shapes_k=1,2", "--steps=100"], "--steps gives 1 values for 2 values of --shapes_k"),
    (["--per_shape=many"], "take integers"),
    (["--modes=frozen,predmiddle"], "Unknown adaptation spec 'predmiddle'"),
])
def test_data_scale_bad_grid_is_one_line(tmp_path, args, message):
  r = _run("data_scale.py", "--config=adajepa_jax/configs/pushobj.py:tiny", f"--workdir={tmp_path}/ds", *args)
  lines = r.stderr.strip().splitlines()
  assert r.returncode == 2 and len(lines) == 1 and message in lines[0], r.stderr
  assert not os.path.exists(tmp_path / "ds")


def test_data_scale_claims_pair_cells_on_the_same_episodes():
  """The paper's two claims from hand-made cells (1 seed x 4 episodes per shape): at totals 2 and 4, K=2 beats
  K=1 on the pooled unseen shapes by 25 points in both modes, and at total 4 K=4 beats K=1 by 50; the adapted
  smallest cell beats the frozen largest (K=4 N=1) on shape T by 100."""
  code = """
import json, sys
sys.path.insert(0, "experiments")
import data_scale
from adajepa_jax.eval.summary import RunSummary
def run(cond, mode, outcomes):
  return RunSummary.from_json({"condition": cond, "mode": mode, "planner": "cem", "replans": 20, "seeds": 1,
      "episodes_per_seed": 4, "eval_seed": 2, "settings": {"plan": {}, "adapt": {}, "checkpoint": None},
      "success_any": {"mean": 0.0, "ci95": 0.0, "per_seed": [], "episodes": 4},
      "episodes": {"success_any": outcomes}})
unseen = {(2, 1): [1, 1, 0, 0], (1, 2): [1, 0, 0, 0], (2, 2): [1, 1, 1, 0], (1, 4): [1, 1, 0, 0],
          (4, 1): [1, 1, 1, 1]}
results = {}
for cell, u in unseen.items():
  for mode in ("frozen", "predlast+enclast"):
    t = [1, 1, 1, 1] if (cell, mode) == ((1, 2), "predlast+enclast") else [0, 0, 0, 0]
    results.setdefault(cell, {})["shape_T", mode] = run("shape_T", mode, t)
    for s in ("I", "smallT", "square"):
      results[cell]["shape_" + s, mode] = run("shape_" + s, mode, u)
rows = data_scale.claims(results, ["frozen", "predlast+enclast"], 1)
print(json.dumps([(r["claim"], r["a"], r["b"], r["episodes"], r["diff_mean"]) for r in rows]))
"""
  import json
  r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert r.returncode == 0, r.stderr
  rows = json.loads(r.stdout.strip().splitlines()[-1])
  fixed = "more shapes at a fixed total (unseen)"
  assert rows == [[fixed, "K=2 N=1 frozen", "K=1 N=2 frozen", 12, 25.0],
                  [fixed, "K=2 N=1 predlast+enclast", "K=1 N=2 predlast+enclast", 12, 25.0],
                  [fixed, "K=2 N=2 frozen", "K=1 N=4 frozen", 12, 25.0],
                  [fixed, "K=2 N=2 predlast+enclast", "K=1 N=4 predlast+enclast", 12, 25.0],
                  [fixed, "K=4 N=1 frozen", "K=1 N=4 frozen", 12, 50.0],
                  [fixed, "K=4 N=1 predlast+enclast", "K=1 N=4 predlast+enclast", 12, 50.0],
                  ["adapted small vs frozen large (shape T)", "K=1 N=2 predlast+enclast", "K=4 N=1 frozen", 4,
                   100.0]]


def test_data_scale_tables_only_rebuilds_from_stored_runs(tmp_path):
  """--tables_only reads hand-made runs from a cell's workdir layout (k1_n2/eval/results/) and from a committed
  copy's (k2_n1/json/), leaves out and names the cells without runs, and writes the table and the claims;
  with no evaluated cell it is a one-line error."""
  import csv
  import json
  modes = ["frozen", "predlast+enclast"]
  shapes = ["T", "L", "Z", "plus", "I", "smallT", "square"]
  for cell, folder, unseen in (("k1_n2", "eval/results", [1, 0, 0, 0]), ("k2_n1", "json", [1, 1, 0, 0])):
    os.makedirs(tmp_path / cell / folder)
    for shape in shapes:
      for mode in modes:
        outcomes = unseen if shape in ("I", "smallT", "square") else [1, 1, 1, 1] if mode != "frozen" else [0] * 4
        run = {"condition": f"shape_{shape}", "mode": mode, "planner": "cem", "replans": 20, "seeds": 1,
               "episodes_per_seed": 4, "eval_seed": 2, "settings": {"plan": {}, "adapt": {}, "checkpoint": None},
               "success_any": {"mean": 0.0, "ci95": 0.0, "per_seed": [], "episodes": 4},
               "episodes": {"success_any": outcomes}}
        with open(tmp_path / cell / folder / f"shape_{shape}__{mode}.json", "w") as f:
          json.dump(run, f)
  args = ["--config=adajepa_jax/configs/pushobj.py:tiny", "--shapes_k=1,2", "--per_shape=1,2", "--steps=5,7",
          "--modes=frozen,predlast+enclast", "--tables_only"]
  r = _run("data_scale.py", f"--workdir={tmp_path}", *args)
  assert r.returncode == 0, r.stderr
  assert "not evaluated (left out): k1_n1, k2_n2" in r.stdout
  with open(tmp_path / "data_scale.csv") as f:
    rows = [(x["shapes_k"], x["per_shape"], x["steps"], x["mode"], float(x["seen_mean"]),
             float(x["unseen_mean"])) for x in csv.DictReader(f)]
  assert rows == [("1", "2", "5", "frozen", 0.0, 25.0), ("1", "2", "5", "predlast+enclast", 100.0, 25.0),
                  ("2", "1", "7", "frozen", 0.0, 50.0), ("2", "1", "7", "predlast+enclast", 100.0, 50.0)]
  assert os.path.getsize(tmp_path / "data_scale.png") > 0
  with open(tmp_path / "data_scale_claims.csv") as f:
    claims = [(x["a"], x["b"], float(x["diff_mean"])) for x in csv.DictReader(f)]
  assert claims == [("K=2 N=1 frozen", "K=1 N=2 frozen", 25.0),
                    ("K=2 N=1 predlast+enclast", "K=1 N=2 predlast+enclast", 25.0),
                    ("K=1 N=2 predlast+enclast", "K=2 N=1 frozen", 100.0)]
  r = _run("data_scale.py", f"--workdir={tmp_path}/empty", *args)
  lines = r.stderr.strip().splitlines()
  assert r.returncode == 2 and len(lines) == 1 and "no cell of the grid has every run" in lines[0], r.stderr


@pytest.mark.slow
def test_data_scale_tiny_grid_runs_and_resumes(tmp_path):
  """Two tiny cells end to end (about 3 minutes), then the same command again: everything is reused."""
  import csv
  args = ["--config=adajepa_jax/configs/pushobj.py:tiny", f"--workdir={tmp_path}", "--shapes_k=1,2",
          "--per_shape=8", "--steps=10,20"]
  first = _run("data_scale.py", *args)
  assert first.returncode == 0, first.stderr
  with open(tmp_path / "data_scale.csv") as f:
    rows = list(csv.DictReader(f))
  assert [(r["shapes_k"], r["mode"]) for r in rows] == [("1", "frozen"), ("1", "predlast+enclast"),
                                                          ("2", "frozen"), ("2", "predlast+enclast")]
  assert all(int(r["unseen_episodes"]) == 3 * 2 * 2 for r in rows)       # 3 held-out shapes x 2 seeds x 2
  assert [int(r["seen_episodes"]) for r in rows] == [4, 4, 8, 8]          # K shapes x 2 seeds x 2
  assert os.path.getsize(tmp_path / "data_scale.png") > 0
  with open(tmp_path / "data_scale_claims.csv") as f:   # no total shared by K=1 and K=2: the second claim only
    assert [r["claim"] for r in csv.DictReader(f)] == ["adapted small vs frozen large (shape T)"]
  mtime = os.path.getmtime(tmp_path / "k1_n8" / "eval" / "results" / "shape_T__frozen.json")
  again = _run("data_scale.py", *args)
  assert again.returncode == 0, again.stderr
  assert os.path.getmtime(tmp_path / "k1_n8" / "eval" / "results" / "shape_T__frozen.json") == mtime
  with open(tmp_path / "data_scale.csv") as f:
    assert list(csv.DictReader(f)) == rows


@pytest.mark.parametrize("args, message", [
    (["--groups=unseen:"], "--groups item 'unseen:': write `name:cond+cond` or one condition"),
    (["--groups=a:clean,a:blur"], "the name 'a' is used twice"),
    (["--groups=blurr"], "Unknown shift 'blurr'"),
    (["--train_seeds=0,0"], "--train_seeds=0,0: give distinct seeds >= 0"),
    (["--eval_seeds=x"], "--eval_seeds takes integers"),
    (["--modes=frozen"], "--modes=frozen: give 'frozen' and at least one adaptation spec"),
    (["--reuse={tmp}/missing"], "No checkpoint found under"),
])
def test_training_seeds_bad_input_is_one_line(tmp_path, args, message):
  r = _run("training_seeds.py", "--config=adajepa_jax/configs/pointmaze.py:tiny", f"--workdir={tmp_path}/t",
           *[a.format(tmp=tmp_path) for a in args])
  lines = r.stderr.strip().splitlines()
  assert r.returncode == 2 and len(lines) == 1 and message in lines[0], r.stderr
  assert not os.path.exists(tmp_path / "t" / "data")


def test_training_seeds_rows_pool_groups_and_evaluation_seeds():
  """Hand-made runs (1 seed x 2 episodes) of 2 models on evaluation seeds 0 and 1, the group 'both' pooling
  clean and blur: model 0 gains +75 (0 -> 6 of 8 episodes), model 1 +12.5 (4 -> 5 of 8); across the two models
  mean 43.75, sd 62.5 / sqrt(2)."""
  code = """
import json, sys
sys.path.insert(0, "experiments")
import training_seeds
from adajepa_jax.eval.summary import RunSummary
def run(cond, mode, outcomes, e):
  return RunSummary.from_json({"condition": cond, "mode": mode, "planner": "cem", "replans": 20, "seeds": 1,
      "episodes_per_seed": 2, "eval_seed": e, "settings": {"plan": {}, "adapt": {}, "checkpoint": None},
      "success_any": {"mean": 0.0, "ci95": 0.0, "per_seed": [], "episodes": 2},
      "episodes": {"success_any": outcomes}})
wins = {0: {0: {"clean": [1, 1], "blur": [1, 0]}, 1: {"clean": [0, 1], "blur": [1, 1]}},
        1: {0: {"clean": [1, 0], "blur": [0, 0]}, 1: {"clean": [1, 0], "blur": [0, 1]}}}
results = {s: {e: {} for e in (0, 1)} for s in (0, 1)}
for s in (0, 1):
  for e in (0, 1):
    for c in ("clean", "blur"):
      results[s][e][c, "frozen"] = run(c, "frozen", [0, 0] if s == 0 else [1, 0], e)
      results[s][e][c, "predlast"] = run(c, "predlast", wins[s][e][c] if s == 0 else
                                         [max(a, b) for a, b in zip(wins[s][e][c], [1, 0])], e)
rows = training_seeds.table_rows(results, {"both": ["clean", "blur"]}, [0, 1], ["frozen", "predlast"], 1)
print(json.dumps([(r["model"], r["episodes"], r["frozen_mean"], r["adaptive_mean"], r["diff_mean"], r["diff_sd"])
                  for r in rows]))
"""
  import json
  import math
  r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert r.returncode == 0, r.stderr
  rows = json.loads(r.stdout.strip().splitlines()[-1])
  assert [row[:5] for row in rows[:2]] == [["seed 0", 8, 0.0, 75.0, 75.0], ["seed 1", 8, 50.0, 62.5, 12.5]]
  assert rows[2][0] == "across 2 models" and rows[2][4] == 43.75
  assert math.isclose(rows[2][5], 62.5 / math.sqrt(2))


@pytest.mark.slow
def test_training_seeds_tiny_runs_reuses_and_resumes(tmp_path, tiny_maze_model):
  """Seed 0 is the tiny maze model (reused), seed 1 trains here on shared data; 2 groups x 2 evaluation seeds.
  A reused model of another recipe is refused; the rerun reuses every stage."""
  import csv
  args = ["--config=adajepa_jax/configs/pointmaze.py:tiny", f"--workdir={tmp_path}/t", "--train_seeds=0,1",
          "--groups=clean,both:clean+low_mass", "--eval_seeds=0,1", "--modes=frozen,predlast",
          f"--reuse={tiny_maze_model}"]
  bad = _run("training_seeds.py", *args, "--config.train.steps=7")
  assert bad.returncode == 2 and "not the same recipe as --config (train.steps: 7 vs 20)" in bad.stderr, bad.stderr
  r = _run("training_seeds.py", *args)
  assert r.returncode == 0, r.stderr
  with open(tmp_path / "t" / "training_seeds.csv") as f:
    rows = list(csv.DictReader(f))
  assert [(row["group"], row["model"]) for row in rows] == [
      (g, m) for g in ("clean", "both") for m in ("seed 0", "seed 1", "across 2 models")]
  assert [row["episodes"] for row in rows] == ["8", "8", "", "16", "16", ""]   # 2 x 2 episodes x 2 eval seeds
  assert not os.path.exists(tmp_path / "t" / "seed0" / "checkpoints")      # reused, not trained
  assert os.path.isdir(tmp_path / "t" / "seed1" / "checkpoints")
  assert os.path.getsize(tmp_path / "t" / "training_seeds.png") > 0
  result = tmp_path / "t" / "seed1" / "eval_seed1" / "results" / "low_mass__frozen.json"
  mtime = os.path.getmtime(result)
  again = _run("training_seeds.py", *args)
  assert again.returncode == 0, again.stderr
  assert os.path.getmtime(result) == mtime
  with open(tmp_path / "t" / "training_seeds.csv") as f:
    assert list(csv.DictReader(f)) == rows


def test_paired_runs_at_a_smaller_budget(tmp_path):
  """From per-episode first successes: within 2 replans, a succeeds on episodes 0, 4 and b on 0, 1, 5."""
  import json
  firsts = {"a": [0, 3, -1, 2, 1, -1, 5, -1], "b": [1, 0, 4, -1, 2, 1, -1, 3]}
  paths = []
  for name, first in firsts.items():
    s = _summary([int(f >= 0) for f in first])
    s["episodes"]["first_success"] = first
    paths.append(tmp_path / f"{name}.json")
    paths[-1].write_text(json.dumps(s))
  r = _run("paired_runs.py", f"--runs=a:{paths[0]},b:{paths[1]}", f"--out={tmp_path}/cmp", "--budget=2")
  assert r.returncode == 0, r.stderr
  md = (tmp_path / "cmp.md").read_text().splitlines()
  assert "| 2x1 | 8 | success_any | 25.0 ± 0.0 |" in md[2], md[2]          # a: seed 0 [1,0,0,0], seed 1 [1,0,0,0]
  assert "| 2x1 | 8 | success_any | 37.5 ± 158.8 | 12.5 ± 158.8 |" in md[3], md[3]   # b: [1,1,0,0], [0,1,0,0]
  r = _run("paired_runs.py", f"--runs=a:{paths[0]},b:{paths[1]}", f"--out={tmp_path}/x", "--budget=30")
  assert r.returncode == 2 and "--budget=30: must be in 1..20" in r.stderr


@pytest.mark.slow
def test_decoded_rollouts_tiny(tmp_path):
  """A tiny PushObj model, its decoder (trained, then resumed from its checkpoint), and the figure."""
  import json
  work = str(tmp_path / "model")
  for script in ("collect_data.py", "train_world_model.py"):
    r = _run(script, "--config=adajepa_jax/configs/pushobj.py:tiny", f"--workdir={work}")
    assert r.returncode == 0, r.stderr
  args = [f"--config=adajepa_jax/configs/stored.py:{work}", f"--workdir={tmp_path}/dec", "--shifts=shape_square",
          "--config.plan.horizon=2", "--replans=0,1", "--decoder_steps=20", f"--out={tmp_path}/fig.png"]
  r = _run("decoded_rollouts.py", *args)
  assert r.returncode == 0, r.stderr
  assert os.path.getsize(tmp_path / "fig.png") > 0
  errors = json.loads((tmp_path / "dec" / "decoder_eval.json").read_text())["next_frame_pixel_mse"]
  assert set(errors) == {"shape_square/frozen", "shape_square/predlast+enclast"}
  assert all(0 < v < 1 for v in errors.values())
  r = _run("decoded_rollouts.py", *args[:-2], "--decoder_steps=30", f"--out={tmp_path}/fig2.png")   # resumes
  assert r.returncode == 0 and os.path.isdir(os.path.join(work, "decoder", "30")), r.stderr
  r = _run("decoded_rollouts.py", *args[:-3], "--replans=4", f"--out={tmp_path}/bad.png")
  assert r.returncode == 2 and "--replans=4: must be in 0..1" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--length=1"], "--length=1 and --sequences=10 must each be >= 2"),
    (["--mode=frozen"], "--mode='frozen' must be an adaptation spec"),
    (["--shifts=shape_square"], "shape_square"),
])
def test_continual_bad_input_is_one_line(tmp_path, args, message):
  r = _run("continual.py", "--config=adajepa_jax/configs/pointmaze.py:tiny", f"--workdir={tmp_path}/c", *args)
  lines = r.stderr.strip().splitlines()
  assert r.returncode == 2 and len(lines) == 1 and message in lines[0], r.stderr


@pytest.fixture(scope="module")
def tiny_maze_model(tmp_path_factory):
  """A trained tiny PointMaze model's workdir (data and 20 training steps)."""
  work = str(tmp_path_factory.mktemp("tiny_maze"))
  for script in ("collect_data.py", "train_world_model.py"):
    r = _run(script, "--config=adajepa_jax/configs/pointmaze.py:tiny", f"--workdir={work}")
    assert r.returncode == 0, r.stderr
  return work


@pytest.mark.slow
def test_continual_tiny_runs_and_resumes(tmp_path, tiny_maze_model):
  """A tiny maze model; 2 shifts x 2 sequences x 2 episodes in four variants; the rerun reuses every run."""
  import csv
  work = tiny_maze_model
  args = [f"--config=adajepa_jax/configs/stored.py:{work}", f"--workdir={tmp_path}/c", "--shifts=clean,low_mass",
          "--length=2", "--sequences=2"]
  r = _run("continual.py", *args)
  assert r.returncode == 0, r.stderr
  with open(tmp_path / "c" / "continual.csv") as f:
    rows = list(csv.DictReader(f))
  assert [(row["shift"], row["variant"]) for row in rows] == [
      (s, v) for s in ("clean", "low_mass") for v in ("frozen", "reset", "continual", "continual_buffer")]
  assert all(row["sequences_x_length"] == "2 x 2" for row in rows)
  assert os.path.getsize(tmp_path / "c" / "continual_low_mass.png") > 0
  mtime = os.path.getmtime(tmp_path / "c" / "runs" / "continual.json")
  again = _run("continual.py", *args)
  assert again.returncode == 0 and again.stdout.count("reused") == 4, again.stdout
  assert os.path.getmtime(tmp_path / "c" / "runs" / "continual.json") == mtime


@pytest.mark.parametrize("args, message", [
    (["--lr_scales=0,1"], "--lr_scales=0,1: each must be > 0"),
    (["--steps=1,x"], "--steps integers"),
    (["--specs=predlast,frozen"], "--specs: 'frozen' must be an adaptation spec"),
    (["--variants=a:adapt.bufer='none'"], "Unknown config key 'adapt.bufer'"),
    (["--variants=a:;a:"], "Variant name 'a' is used twice"),
    (["--buffers=recent,oldest"], "Unknown buffer policy 'oldest'"),
    (["--buffers=hard:5:merged"], "the 'hard' policy"),
    (["--buffers=recent:x"], "the size 'x' must be an integer"),
])
def test_ablate_bad_input_is_one_line(tmp_path, args, message):
  r = _run("ablate.py", "--config=adajepa_jax/configs/pointmaze.py:tiny", f"--workdir={tmp_path}/a", *args)
  lines = r.stderr.strip().splitlines()
  assert r.returncode == 2 and len(lines) == 1 and message in lines[0], r.stderr


def test_ablate_rows_pair_each_cell_with_frozen_and_the_default_cell():
  """Hand-made outcomes (1 seed x 4 episodes, one shift), lr scales 1, 2 x steps 1, 2: frozen wins 1 of 4, the
  default cell (x1, 1 step) 2, the others 3 or 4. Each cell is paired with frozen and with the default cell;
  the default cell itself has no second difference. The same outcomes as layer sets x buffers: the default
  is the config's set with the config's buffer (the fourth cell, 3 of 4 wins). A second variant's cells,
  its own default cell included, are paired with the first variant's default cell."""
  code = """
import json, sys
sys.path.insert(0, "experiments")
import ablate
import numpy as np
from adajepa_jax.configs import pointmaze
cfg = pointmaze.get_config("tiny")
cfg.eval.seeds = 1
frozen = np.array([[[1, 0, 0, 0]]])
grid = np.array([[[1, 1, 0, 0]], [[1, 1, 1, 0]], [[1, 1, 1, 1]], [[0, 1, 1, 1]]])   # (1,1) (1,2) (2,1) (2,2)
rows = ablate.table_rows(frozen, {"base": grid, "other": grid[::-1]}, cfg, ["clean"], ["predlast"], None,
                        [1.0, 2.0], [1, 2])
print(json.dumps([(r["variant"], r["spec"], r["lr_scale"], r["steps"], r["diff_vs_frozen_mean"],
                   r["diff_vs_default_mean"]) for r in rows]))
cfg.adapt.spec = "predlast"   # layer sets x buffers: the config's set and buffer are the default cell
rows = ablate.table_rows(frozen, {"base": grid}, cfg, ["clean"], ["predfirst", "predlast"], ["hard:5", "recent:5"],
                         [1.0], [1], default_buffer="recent:5")
print(json.dumps([(r["spec"], r["buffer"], r["diff_vs_default_mean"]) for r in rows[1:]]))
"""
  import json
  import math
  r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert r.returncode == 0, r.stderr
  rows, cross = (json.loads(line) for line in r.stdout.strip().splitlines()[-2:])
  assert [row[:5] for row in rows[1:5]] == [["base", "predlast", 1.0, 1, 25.0], ["base", "predlast", 1.0, 2, 50.0],
                                            ["base", "predlast", 2.0, 1, 75.0], ["base", "predlast", 2.0, 2, 50.0]]
  assert rows[0][1] == "frozen" and math.isnan(rows[0][5]) and math.isnan(rows[1][5])
  assert [row[5] for row in rows[2:5]] == [25.0, 50.0, 25.0]
  # "other" holds the cells in reverse order: its default cell (x1, 1 step) wins 3 of 4, +25 over base's.
  assert [(row[0], row[4], row[5]) for row in rows[5:]] == [("other", 50.0, 25.0), ("other", 75.0, 50.0),
                                                            ("other", 50.0, 25.0), ("other", 25.0, 0.0)]
  assert cross[:3] == [["predfirst", "hard:5", -25.0], ["predfirst", "recent:5", 0.0], ["predlast", "hard:5", 25.0]]
  assert cross[3][:2] == ["predlast", "recent:5"] and math.isnan(cross[3][2])


def test_ablate_pools_a_shift_family_per_seed():
  """Two shifts x 2 seeds x 2 episodes: shift A's cell wins both seed-0 episodes, shift B's likewise, frozen
  none. Pooled per seed, seed 0 wins 4 of 4 and seed 1 none: per-seed gains 100 and 0 (pooling shift-major
  would give 50 and 50). The pooled rows follow the per-shift rows, with all 8 episodes."""
  code = """
import json, sys
sys.path.insert(0, "experiments")
import ablate
import numpy as np
from adajepa_jax.configs import pointmaze
cfg = pointmaze.get_config("tiny")
cfg.eval.seeds = 2
frozen = np.zeros((1, 2, 4), int)
grid = np.array([[[1, 1, 0, 0], [1, 1, 0, 0]]])
rows = ablate.table_rows(frozen, {"base": grid}, cfg, ["A", "B"], ["predlast"], None, [1.0], [1])
print(json.dumps([(r["shift"], r["spec"], r["episodes"], r["diff_vs_frozen_mean"], r["diff_boot95"],
                   r["diff_vs_frozen_ci95"]) for r in rows]))
"""
  import json
  r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert r.returncode == 0, r.stderr
  rows = json.loads(r.stdout.strip().splitlines()[-1])
  assert [row[:3] for row in rows] == [["A", "frozen", 4], ["A", "predlast", 4], ["B", "frozen", 4],
                                       ["B", "predlast", 4], ["pooled", "frozen", 8], ["pooled", "predlast", 8]]
  assert [row[3] for row in rows[1::2]] == [50.0, 50.0, 50.0]
  # Per seed: seed 0 always +100 and seed 1 always 0 under resampling, so the bootstrap is exactly 50 and the
  # t interval over the two seeds is wide; shift-major pooling would give seeds of 50 each: t interval 0.
  assert rows[5][4] == "[50.0, 50.0]" and rows[5][5] > 100


@pytest.mark.slow
def test_ablate_tiny_grid_runs_and_resumes(tmp_path, tiny_maze_model):
  """2 layer sets x 2 buffers x 2 lr scales x 2 step counts x 2 variants (one an untraceable override) on 2
  shifts x 2 x 2 episodes; the set that adapts the encoder trunk runs as a second program, its cells still in
  the order of --specs. The rerun reuses the frozen run and both grids."""
  import csv
  args = [f"--config=adajepa_jax/configs/stored.py:{tiny_maze_model}", f"--workdir={tmp_path}/a",
          "--shifts=clean,low_mass", "--specs=predlast+encfirst,predfirst", "--buffers=recent,hard:2",
          "--lr_scales=1,5", "--steps=1,2", "--variants=base:;keep_moments:adapt.reset_optimizer=False"]
  r = _run("ablate.py", *args)
  assert r.returncode == 0, r.stderr
  with open(tmp_path / "a" / "ablate.csv") as f:
    rows = list(csv.DictReader(f))
  assert "program 1 of 2: predfirst" in r.stdout and "program 2 of 2: predlast+encfirst" in r.stdout, r.stdout
  assert len(rows) == 3 * (1 + 2 * 2 * 2 * 4)   # clean, low_mass, pooled
  assert [(row["variant"], row["spec"], row["buffer"], row["lr_scale"], row["steps"]) for row in rows[:3]] == [
      ("-", "frozen", "", "", ""), ("base", "predlast+encfirst", "recent", "1.0", "1"),
      ("base", "predlast+encfirst", "recent", "1.0", "2")]
  assert rows[5]["buffer"] == "hard:2" and rows[9]["spec"] == "predfirst"
  assert all(row["episodes"] == ("8" if row["shift"] == "pooled" else "4") for row in rows)
  assert os.path.getsize(tmp_path / "a" / "ablate_keep_moments.png") > 0
  again = _run("ablate.py", *args, "--families=damped:low_mass")
  assert again.returncode == 0 and again.stdout.count("reused") == 3, again.stdout
  with open(tmp_path / "a" / "ablate.csv") as f:
    family = [row for row in csv.DictReader(f) if row["shift"] == "damped"]
  assert [{k: v for k, v in row.items() if k != "shift"} for row in family] == [
      {k: v for k, v in row.items() if k != "shift"} for row in rows if row["shift"] == "low_mass"]
  bad = _run("ablate.py", *args, "--families=damped:high_mass")
  assert bad.returncode == 2 and "high_mass not in --shifts (clean, low_mass)" in bad.stderr, bad.stderr


def test_paired_runs_pools_evaluation_seeds_as_further_seeds(tmp_path):
  """One condition on evaluation seeds 0 and 1 (2 seeds x 4 episodes each) pools into 4 seeds x 4: frozen per
  seed 2, 1, 2, 0 of 4; adaptive 4, 1, 2, 2, so differences +50, 0, 0, +50. Pooling other conditions on other
  evaluation seeds, or pairing the pool with one evaluation seed, is refused with one line."""
  import csv
  import json
  runs = {("frozen", 0): [0, 0, 1, 1, 0, 1, 0, 0], ("frozen", 1): [1, 1, 0, 0, 0, 0, 0, 0],
          ("predlast+enclast", 0): [1, 1, 1, 1, 0, 1, 0, 0], ("predlast+enclast", 1): [1, 1, 0, 0, 1, 1, 0, 0]}
  errors = {("frozen", 0): [1, 2, 2], ("frozen", 1): [1, 4, 4], ("predlast+enclast", 0): [1, 1, 1],
            ("predlast+enclast", 1): [1, 2, 2]}   # pooled per replan: [1, 3, 3] and [1, 1.5, 1.5]
  paths = {}
  for (mode, seed), outcomes in runs.items():
    paths[mode, seed] = tmp_path / f"clean_{seed}__{mode}.json"
    paths[mode, seed].write_text(json.dumps(_summary(outcomes, mode=mode, eval_seed=seed,
                                                     pred_error_before=errors[mode, seed])))
  pooled = {m: f"{m}:{paths[m, 0]},{m}:{paths[m, 1]}" for m in ("frozen", "predlast+enclast")}
  r = _run("paired_runs.py", f"--runs={pooled['frozen']},{pooled['predlast+enclast']}", f"--out={tmp_path}/pool")
  assert r.returncode == 0, r.stderr
  with open(tmp_path / "pool.csv") as f:
    rows = list(csv.DictReader(f))
  assert [(r["condition"], r["eval_seed"], int(r["episodes"])) for r in rows] == [("clean", "0+1", 16)] * 2
  assert float(rows[0]["success_mean"]) == 31.25 and float(rows[1]["success_mean"]) == 56.25
  assert float(rows[1]["diff_vs_first_mean"]) == 25.0 and float(rows[1]["diff_vs_first_ci95"]) > 0.0
  assert [(float(r["heldout_error"]), float(r["heldout_error_vs_first"])) for r in rows] == [(3.0, 1.0), (1.5, 0.5)]
  blur = tmp_path / "blur_1__frozen.json"
  blur.write_text(json.dumps(_summary(runs["frozen", 1], condition="blur", mode="frozen", eval_seed=1)))
  for bad, field in [(f"frozen:{paths['frozen', 0]},frozen:{blur},{pooled['predlast+enclast']}", "condition"),
                     (f"{pooled['frozen']},predlast+enclast:{paths['predlast+enclast', 0]}", "eval_seed")]:
    r = _run("paired_runs.py", f"--runs={bad}", f"--out={tmp_path}/bad")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and field in lines[0], r.stderr


def test_condition_tables_pair_each_condition_of_a_run(tmp_path):
  """condition_tables.sh writes one paired table per condition the adaptive mode ran (20-replan runs: `_b20`
  only; no shape conditions: no pooled sets), and names a mode the run lacks in one line."""
  import csv
  import json
  e = tmp_path / "eval"
  (e / "results").mkdir(parents=True)
  for name in ("success.md", "success.csv", "config.json"):
    (e / name).write_text("{}")
  for cond, frozen, adaptive in [("clean", [0, 0, 1, 1, 0, 1, 0, 0], [1, 1, 1, 1, 0, 1, 0, 0]),
                                 ("blur", [1, 1, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0])]:
    for mode, outcomes in (("frozen", frozen), ("predlast+enclast", adaptive)):
      (e / "results" / f"{cond}__{mode}.json").write_text(json.dumps(_summary(outcomes, condition=cond, mode=mode)))
  script = os.path.join(ROOT, "experiments", "condition_tables.sh")
  env = dict(os.environ, PY=sys.executable)
  r = subprocess.run(["bash", script, str(e), str(tmp_path / "r"), "predlast+enclast"], cwd=ROOT, env=env,
                     capture_output=True, text=True, timeout=300)
  assert r.returncode == 0, r.stderr
  assert sorted(os.listdir(tmp_path / "r" / "budget")) == ["blur_b20.csv", "blur_b20.md", "clean_b20.csv",
                                                            "clean_b20.md"]
  with open(tmp_path / "r" / "budget" / "clean_b20.csv") as f:
    rows = list(csv.DictReader(f))
  assert float(rows[1]["diff_vs_first_mean"]) == 25.0
  r = subprocess.run(["bash", script, str(e), str(tmp_path / "r2"), "predfirst"], cwd=ROOT, env=env,
                     capture_output=True, text=True, timeout=60)
  assert r.returncode == 2 and "No runs of mode 'predfirst'" in r.stderr and not (tmp_path / "r2").exists()


def test_paired_runs_pools_conditions_per_seed(tmp_path):
  """Items sharing a label pool their conditions per seed (2 seeds x 4 episodes each): frozen seed 0 4/8,
  seed 1 1/8; adaptive 6/8 and 3/8, so +25 on each seed. Pooling runs of two modes is refused with one line."""
  import csv
  import json
  runs = {("frozen", "clean"): [0, 0, 1, 1, 0, 1, 0, 0], ("frozen", "blur"): [1, 1, 0, 0, 0, 0, 0, 0],
          ("predlast+enclast", "clean"): [1, 1, 1, 1, 0, 1, 0, 0],
          ("predlast+enclast", "blur"): [1, 1, 0, 0, 1, 1, 0, 0]}
  paths = {}
  for (mode, cond), outcomes in runs.items():
    paths[mode, cond] = tmp_path / f"{cond}__{mode}.json"
    paths[mode, cond].write_text(json.dumps(_summary(outcomes, condition=cond, mode=mode)))
  pooled = {m: f"{m}:{paths[m, 'clean']},{m}:{paths[m, 'blur']}" for m in ("frozen", "predlast+enclast")}
  r = _run("paired_runs.py", f"--runs={pooled['frozen']},{pooled['predlast+enclast']}",
           f"--out={tmp_path}/pool")
  assert r.returncode == 0, r.stderr
  with open(tmp_path / "pool.csv") as f:
    rows = list(csv.DictReader(f))
  assert [r["condition"] for r in rows] == ["clean+blur"] * 2
  assert [int(r["episodes"]) for r in rows] == [16, 16]
  assert float(rows[0]["success_mean"]) == 31.25 and float(rows[1]["success_mean"]) == 56.25
  assert float(rows[1]["diff_vs_first_mean"]) == 25.0 and float(rows[1]["diff_vs_first_ci95"]) == 0.0
  r = _run("paired_runs.py", f"--runs=mixed:{paths['frozen', 'clean']},mixed:{paths['predlast+enclast', 'blur']},"
           f"{pooled['predlast+enclast']}", f"--out={tmp_path}/bad")
  lines = r.stderr.strip().splitlines()
  assert r.returncode == 2 and len(lines) == 1 and "Cannot pool" in lines[0] and "mode" in lines[0], r.stderr
