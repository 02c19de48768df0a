"""Runtime setup shared by scripts and tests: quiet known-harmless warnings, compilation cache."""
import logging
import os
import warnings


def quiet_known_warnings():
  """Filters the harmless 'Failed to import warp' (mjx) and jaxopt-deprecation messages."""
  warnings.filterwarnings("ignore", message=".*jaxopt.*")
  warnings.filterwarnings("ignore", category=DeprecationWarning, module="brax")

  class _DropWarp(logging.Filter):

    def filter(self, record):
      return "warp" not in record.getMessage().lower()

  for name in ("", "mujoco", "mujoco.mjx", "absl"):
    logging.getLogger(name).addFilter(_DropWarp())


def setup_runtime(cache_dir=None):
  """Enables the persistent compilation cache (default `~/.cache/adajepa_jax/jax`) and quiets warnings."""
  import jax

  quiet_known_warnings()
  cache_dir = cache_dir or os.environ.get(
      "ADAJEPA_JAX_CACHE", os.path.expanduser("~/.cache/adajepa_jax/jax"))
  os.makedirs(cache_dir, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", cache_dir)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
