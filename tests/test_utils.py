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
