"""Runtime setup: the XLA flags it adds."""
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
