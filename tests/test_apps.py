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
