"""Tasks behind brax's Env protocol, stepping MJX directly, rendered by a pure-JAX rasteriser."""
from adajepa_jax.envs.registry import make, names, register
