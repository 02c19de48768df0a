"""Runtime setup: the XLA flags it adds."""
import pytest
import os

import jax

from adajepa_jax import utils


def test_add_xla_flags_keeps_user_settings_and_knows_when_too_late(monkeypatch):
  jax.devices()   # once the backends are up, XLA no longer reads $XLA_FLAGS: nothing may change
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
  assert utils.add_xla_flags() is False
  assert os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=2"
  assert utils.cpu_xla_flags_active() is False
  monkeypatch.setenv("XLA_FLAGS", " ".join(utils.CPU_XLA_FLAGS))
  assert utils.cpu_xla_flags_active() is True


def test_host_device_flag_counts_cores():
  flag = utils.host_device_flag()
  name, count = flag.split("=")
  assert name == "--xla_force_host_platform_device_count"
  assert 1 <= int(count) <= min(utils.MAX_HOST_DEVICES, os.cpu_count())


def test_config_overrides():
  from adajepa_jax.configs import base, pusht
  cfg = pusht.get_config("tiny")
  o = base.parse_overrides("plan.proprio_weight=100.0, plan.planner='gd',task.kwargs.goal_rule='explore'")
  assert o == {"plan.proprio_weight": 100.0, "plan.planner": "gd", "task.kwargs.goal_rule": "explore"}
  new = base.apply_overrides(cfg, o)
  assert new.plan.proprio_weight == 100.0 and new.plan.planner == "gd" and new.task.kwargs.goal_rule == "explore"
  assert cfg.plan.planner == "cem"                      # the original is untouched
  with pytest.raises(ValueError, match="valid keys there: .*proprio_weight"):
    base.apply_overrides(cfg, {"plan.proprio_wieght": 1.0})
  with pytest.raises(ValueError, match="no section 'plann'"):
    base.apply_overrides(cfg, {"plann.x": 1})
  with pytest.raises(ValueError, match="not a Python literal"):
    base.parse_overrides("plan.planner=gd")


def test_stored_config_fills_test_time_keys_and_refuses_model_keys(monkeypatch):
  """A stored config from older code: a missing test-time key (adapt / plan / eval, an option added after
  training) takes today's default; a missing key of a section that shaped the model is refused, named."""
  from adajepa_jax.configs import base, pusht, stored
  from adajepa_jax.errors import UsageError
  from adajepa_jax.training import checkpoint

  def older(drop):
    def load_config(path, step=None):
      c = pusht.get_config("tiny")
      section, key = drop.split(".")
      del c[section][key]
      return c, {"step": 7, "obs_spec": {"image_size": 32}}
    return load_config

  monkeypatch.setattr(checkpoint, "load_config", older("adapt.optimizer"))
  c = stored.get_config("/some/workdir")
  assert c.adapt.optimizer == base.adapt_config().optimizer == "adam" and c.checkpoint.step == 7
  monkeypatch.setattr(checkpoint, "load_config", older("model.depth"))
  with pytest.raises(UsageError, match="lacks model.depth; re-train it"):
    stored.get_config("/some/workdir")
