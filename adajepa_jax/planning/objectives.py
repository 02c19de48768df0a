"""Latent goal objectives: per-frame squared distances to the goal latent, weighted over the horizon."""
import jax.numpy as jnp

MODES = ("terminal", "all", "staged")


def horizon_weights(mode, horizon, replan_idx=0, staged_switch=0):
  """Weights over the planned frames, normalised to sum to 1.

  Modes: `terminal` (only the last frame), `all` (frame i weighted 2^i), `staged` (the paper's PushT
  schedule: `terminal` while `replan_idx < staged_switch`, then `all`). `replan_idx` may be a traced
  integer, so an MPC `lax.scan` over replans compiles once.

  Args:
    mode: one of MODES (static).
    horizon: H, the number of planned model steps (static).
    replan_idx: i32[] the index of the current replan (traced or Python int).
    staged_switch: the number of replans using the terminal cost in `staged` mode (static).

  Returns:
    f32[H] non-negative weights summing to 1.

  Example:
    >>> horizon_weights("all", 3)
    Array([0.14285715, 0.2857143 , 0.5714286 ], dtype=float32)
  """
  if mode not in MODES:
    raise ValueError(f"Unknown objective mode {mode!r}; valid modes: {', '.join(MODES)}")
  if horizon < 1:
    raise ValueError(f"horizon={horizon!r} must be >= 1")
  terminal = jnp.zeros((horizon,), jnp.float32).at[-1].set(1.0)
  geometric = 2.0 ** jnp.arange(horizon, dtype=jnp.float32)
  geometric = geometric / geometric.sum()
  if mode == "terminal":
    return terminal
  if mode == "all":
    return geometric
  return jnp.where(jnp.asarray(replan_idx) < staged_switch, terminal, geometric)


def latent_cost(z_pred, z_goal, weights, visual_dim, proprio_weight=1.0):
  """Weighted latent distance of predicted frames to the goal.

  Per frame: the mean squared error over the visual channels `[:visual_dim]` plus `proprio_weight` times
  the mean squared error over the proprio channels `[visual_dim:]` (means over tokens and channels, so the
  scale does not depend on the number of tokens); frames are then summed with `weights`.

  Args:
    z_pred: f32[S, H, N, D] predicted latents of S candidate plans.
    z_goal: f32[N, D] the goal latent.
    weights: f32[H] horizon weights (see `horizon_weights`).
    visual_dim: the number of visual channels, 1 <= visual_dim <= D (static).
    proprio_weight: scalar weight of the proprio channels.

  Returns:
    f32[S] costs.
  """
  if z_pred.ndim != 4:
    raise ValueError(f"z_pred must have shape (S, H, N, D); got {z_pred.shape}")
  if z_goal.shape != z_pred.shape[2:]:
    raise ValueError(f"z_goal must have shape (N, D) = {z_pred.shape[2:]}; got {z_goal.shape}")
  if weights.shape != z_pred.shape[1:2]:
    raise ValueError(f"weights must have shape (H,) = {z_pred.shape[1:2]}; got {weights.shape}")
  dim = z_pred.shape[-1]
  if not 1 <= visual_dim <= dim:
    raise ValueError(f"visual_dim={visual_dim!r} must be in [1, D={dim}]")
  sq = jnp.square(z_pred.astype(jnp.float32) - z_goal.astype(jnp.float32))
  per_frame = sq[..., :visual_dim].mean(axis=(-2, -1))
  if visual_dim < dim:
    per_frame = per_frame + proprio_weight * sq[..., visual_dim:].mean(axis=(-2, -1))
  return jnp.einsum("sh,h->s", per_frame, weights.astype(jnp.float32))
