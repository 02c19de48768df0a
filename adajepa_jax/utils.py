"""Runtime setup shared by scripts and tests: quiet known-harmless messages, persistent compilation cache."""
import os
import warnings


def quiet_known_warnings():
  """Filters the jaxopt deprecation warnings brax triggers and absl INFO logs (orbax logs every save there).

  mujoco.mjx's "Failed to import warp" print is silenced where mjx is first imported (`adajepa_jax.envs`).
  """
  from absl import logging as absl_logging
  warnings.filterwarnings("ignore", message=".*jaxopt.*")
  warnings.filterwarnings("ignore", category=DeprecationWarning, module="brax")
  absl_logging.set_verbosity(absl_logging.WARNING)


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
