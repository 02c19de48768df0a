"""Test setup: 2 host devices (for sharding tests) and a persistent compilation cache.

XLA_FLAGS must be set before jax initialises its backends, so this runs at import time.
"""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

from adajepa_jax import utils  # noqa: E402

utils.setup_runtime(os.environ.get(
    "ADAJEPA_JAX_CACHE", os.path.join(os.path.dirname(os.path.dirname(__file__)), ".jax_cache")))
