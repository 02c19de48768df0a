"""Latent predictors: a block-causal transformer over history frames, and an MLP for tiny configs.

Both map latents z f32[B, T, N, D] and action embeddings f32[B, T, Da] to next latents f32[B, T, N, D]
(output k predicts frame k+1 from frames <= k), as a residual on z.

Transformer param names: in_proj, pos_emb, block_0..block_{L-1} (pre-norm, attention `qkv`/`proj`, MLP
`fc1`/`fc2`), final_norm, out_proj. MLP param names: block_0..block_{L-1}, out_proj. Every dense kernel is
2-D so LoRA adapters apply uniformly.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from adajepa_jax import utils

PREDICTORS = ("transformer", "mlp")
SHORT_SEQUENCE = 8   # attention over at most this many tokens may be computed elementwise (see Attention)


def _elementwise_attention(length):
  """Whether attention over `length` tokens runs as fused products and sums instead of batched dots.

  For a few tokens (the global encoder: one token per frame) the per-head L x L matmuls cost as much as the
  rest of the predictor on XLA:CPU. The elementwise form is faster there with the project's CPU flags
  (`utils.CPU_XLA_FLAGS`) but slower with XLA's default CPU fusions (both seen on 2 cores); accelerators keep
  the dots (not measured there). Decided at trace time.
  """
  return length <= SHORT_SEQUENCE and jax.default_backend() == "cpu" and utils.cpu_xla_flags_active()


def _out_init(residual):
  """Residual predictors start as the copy-last-latent model (zero output kernel)."""
  return nn.initializers.zeros if residual else nn.linear.default_kernel_init


class Attention(nn.Module):
  """Multi-head self-attention with an explicit boolean mask.

  x: f32[B, L, C]; mask: bool[B, L, L] (True = may attend); query_start: queries are the tokens from this one
  on (static) -> f32[B, L - query_start, C].
  """
  heads: int

  @nn.compact
  def __call__(self, x, mask, query_start=0):
    b, l, c = x.shape
    if c % self.heads:
      raise ValueError(f"predictor width {c} is not divisible by heads={self.heads}")
    hd = c // self.heads
    qkv = nn.Dense(3 * c, name="qkv")(x).reshape(b, l, 3, self.heads, hd)
    q, k, v = qkv[:, query_start:, 0] / jnp.sqrt(jnp.float32(hd)), qkv[:, :, 1], qkv[:, :, 2]
    mask = mask[:, query_start:]
    if _elementwise_attention(l):
      logits = jnp.sum(q[:, :, None] * k[:, None], -1)                       # [B, Lq, Lk, h]
      logits = jnp.where(mask[..., None], logits, jnp.finfo(jnp.float32).min)
      out = jnp.sum(jax.nn.softmax(logits, axis=2)[..., None] * v[:, None], 2)   # [B, Lq, h, hd]
    else:
      logits = jnp.einsum("bqhd,bkhd->bhqk", q, k)
      logits = jnp.where(mask[:, None], logits, jnp.finfo(jnp.float32).min)
      out = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits, axis=-1), v)
    return nn.Dense(c, name="proj")(out.reshape(b, l - query_start, c))


class Block(nn.Module):
  """Pre-norm transformer block: x + attn(LN(x)); x + MLP(LN(x)).

  x: f32[B, L, C] -> f32[B, L - query_start, C] (the outputs of the tokens from `query_start` on).
  """
  heads: int
  mlp_ratio: int

  @nn.compact
  def __call__(self, x, mask, query_start=0):
    c = x.shape[-1]
    x = x[:, query_start:] + Attention(self.heads, name="attn")(nn.LayerNorm(name="norm1")(x), mask,
                                                                query_start)
    h = nn.gelu(nn.Dense(c * self.mlp_ratio, name="fc1")(nn.LayerNorm(name="norm2")(x)))
    return x + nn.Dense(c, name="fc2")(h)


def frame_causal_mask(num_frames, tokens_per_frame, valid):
  """Block-causal attention mask over frames.

  Args:
    num_frames: T.
    tokens_per_frame: N.
    valid: bool[B, T] (False = left padding).

  Returns:
    bool[B, T*N, T*N]: query token of frame i may attend key token of frame j iff j <= i and frame j is
    valid; every token may attend itself (so padded rows stay finite).
  """
  frame = jnp.repeat(jnp.arange(num_frames), tokens_per_frame)
  causal = frame[None, :] <= frame[:, None]
  key_valid = jnp.repeat(valid, tokens_per_frame, axis=-1)[:, None, :]
  eye = jnp.eye(num_frames * tokens_per_frame, dtype=bool)
  return (causal[None] & key_valid) | eye[None]


def frame_positions(pos, valid):
  """Positional embeddings by each frame's rank among the valid frames.

  A window left-padded at the start of an episode ([pad, pad, o_0]) then gets exactly the embeddings of the
  first frame of a full training window: with the block-causal mask, its prediction equals the training
  prefix's. Full windows get positions 0..T-1.

  Args:
    pos: f32[max_frames, N, C] learned embeddings per frame slot.
    valid: bool[B, T] (False = left padding).

  Returns:
    f32[B, T, N, C]; padded frames get position 0 (their outputs are never read).
  """
  rank = jnp.maximum(jnp.cumsum(valid.astype(jnp.int32), axis=1) - 1, 0)
  return pos[rank]


class TransformerPredictor(nn.Module):
  """ViT-style predictor over history frames.

  Attributes:
    width: model width (in_proj maps D + Da to it).
    depth: number of blocks L.
    heads: attention heads.
    mlp_ratio: MLP hidden = width * mlp_ratio.
    max_frames: frames covered by the learned positional embedding (the history).
    residual: predict z + delta instead of z.
  """
  width: int
  depth: int
  heads: int
  mlp_ratio: int
  max_frames: int
  residual: bool = True

  @nn.compact
  def __call__(self, z, a_emb, valid, last_only=False):
    """z: f32[B, T, N, D]; a_emb: f32[B, T, Da]; valid: bool[B, T] -> f32[B, T, N, D].

    last_only (static): return only the last frame's prediction, f32[B, 1, N, D] (what a rollout step
    uses); the last block then computes outputs for that frame's tokens alone.
    """
    b, t, n, d = z.shape
    if t > self.max_frames:
      raise ValueError(f"predictor got {t} frames but its positional embedding covers {self.max_frames}")
    a = jnp.broadcast_to(a_emb[:, :, None, :], (b, t, n, a_emb.shape[-1]))
    x = nn.Dense(self.width, name="in_proj")(jnp.concatenate([z, a], -1)).reshape(b, t * n, self.width)
    pos = self.param("pos_emb", nn.initializers.normal(0.02), (self.max_frames * n, self.width))
    x = x + frame_positions(pos.reshape(self.max_frames, n, self.width), valid).reshape(b, t * n, self.width)
    mask = frame_causal_mask(t, n, valid)
    for i in range(self.depth):
      start = (t - 1) * n if last_only and i == self.depth - 1 else 0
      x = Block(self.heads, self.mlp_ratio, name=f"block_{i}")(x, mask, start)
    if last_only:
      z = z[:, -1:]
    x = nn.LayerNorm(name="final_norm")(x)
    out = nn.Dense(d, kernel_init=_out_init(self.residual), name="out_proj")(x).reshape(z.shape)
    return z + out if self.residual else out


class MLPBlock(nn.Module):
  """Dense -> GELU."""
  width: int

  @nn.compact
  def __call__(self, x):
    return nn.gelu(nn.Dense(self.width)(x))


class MLPPredictor(nn.Module):
  """Markov per-frame MLP: frame k's next latent from (z_k, a_k) only; `valid` is unused."""
  width: int
  depth: int
  residual: bool = True

  @nn.compact
  def __call__(self, z, a_emb, valid, last_only=False):
    """z: f32[B, T, N, D]; a_emb: f32[B, T, Da]; valid: bool[B, T] (unused) -> f32[B, T, N, D].

    last_only (static): only the last frame, f32[B, 1, N, D].
    """
    del valid
    if last_only:
      z, a_emb = z[:, -1:], a_emb[:, -1:]
    b, t, n, d = z.shape
    x = jnp.concatenate([z.reshape(b, t, n * d), a_emb], -1)
    for i in range(self.depth):
      x = MLPBlock(self.width, name=f"block_{i}")(x)
    out = nn.Dense(n * d, kernel_init=_out_init(self.residual), name="out_proj")(x).reshape(b, t, n, d)
    return z + out if self.residual else out
