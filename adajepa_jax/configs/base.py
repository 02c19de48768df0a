"""Config sections shared by every task config. Each section is owned by one package:

  task   -> envs        data  -> data         model -> models
  train  -> training    plan  -> planning     adapt -> adaptation     eval -> mpc / eval

Task files (`pusht.py`, `pushobj.py`, `pointmaze.py`) compose these and apply a scale
(`cpu`: runs here in minutes; `tiny`: tests; `paper`: the authors' scale, for accelerators).
Select one from the command line as `--config=adajepa_jax/configs/pusht.py:cpu` and override fields as
`--config.plan.planner=gd` (ml_collections `config_flags`; the config is locked, so a misspelt key is an
error). `stored.py` loads the config a training workdir's checkpoint was trained with.
"""
import ast
from typing import Any

import ml_collections

from adajepa_jax.errors import UsageError

SCALES = ("tiny", "cpu", "paper")


def task_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = "pusht"          # a registered task name (adajepa_jax.envs.names())
  c.kwargs = ml_collections.ConfigDict({"image_size": 64})
  return c


def data_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.episodes = 1000         # offline trajectories
  c.length = 100            # env steps per trajectory
  c.seed = 0
  c.shard_episodes = 250    # episodes per shard on disk
  c.frameskip = 5           # env actions per model step
  c.history = 3             # context frames of the predictor
  c.val_fraction = 0.05
  c.expert_fraction = 0.0   # episodes that follow the task's expert policy (PushT/PushObj configs: 0.5)
  return c


def model_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.encoder = "resnet"      # "resnet" (global latent) | "spatial" (patch tokens)
  c.widths = (16, 32, 64, 128)
  c.latent_dim = 64
  c.predictor = "transformer"   # "transformer" | "mlp"
  c.depth = 2
  c.heads = 4
  c.mlp_ratio = 4
  c.action_emb_dim = 10
  c.proprio_emb_dim = 10
  c.residual = True         # predictor outputs z + delta (starts as the copy-last-latent model)
  c.gem_p = 3.0             # GeM pooling exponent (global encoder)
  c.decoder = False         # visualisation decoder trained on stop-gradient latents
  return c


def train_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.batch_size = 32
  c.steps = 2000            # cpu scale: about 10 minutes on 2 shared cores at 64 px
  c.lr_encoder = 1e-4
  c.lr_predictor = 5e-4
  c.warmup_steps = 100
  c.weight_decay = 0.0
  c.curvature_weight = 0.0
  c.vicreg_var_weight = 1.0   # anti-collapse of the visual latent (stop-grad alone collapses it here)
  c.vicreg_cov_weight = 0.04
  c.decoder_weight = 1.0    # only used when model.decoder
  c.grad_clip = 1.0
  c.final_lr_fraction = 0.1  # cosine decay ends at lr * this
  c.eval_every = 200
  c.eval_batches = 4        # fixed validation batches
  c.checkpoint_every = 200  # also the data-order segment length (exact resume)
  c.log_every = 50
  c.tensorboard = True
  c.probe_batches = 16      # train-split batches for the final linear probe (half as many val; 0: skip)
  c.data_dir = ""           # default: <workdir>/data
  c.seed = 0
  return c


def plan_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.planner = "cem"         # "cem" | "gd" | "mppi"
  c.horizon = 5             # model steps
  c.objective = "staged"    # "terminal" | "all" | "staged"
  c.staged_switch = 5       # replans using the terminal cost before switching to all-frames 2^i
  c.proprio_weight = 1.0
  # Beyond the paper: the goal latent is the mean of the latents of this many independent draws of the shifted
  # goal image (the draws differ only under a random visual shift, e.g. salt-and-pepper noise). 1: the paper's
  # protocol, one shifted goal image.
  c.goal_draws = 1
  c.cem = ml_collections.ConfigDict(
      {"samples": 200, "elites": 30, "iterations": 10, "init_sigma": 1.0, "min_sigma": 0.05})
  c.gd = ml_collections.ConfigDict({"lr": 0.1, "steps": 100})
  c.mppi = ml_collections.ConfigDict(
      {"samples": 200, "iterations": 10, "temperature": 0.1, "noise": 1.0, "min_sigma": 0.05})
  return c


def adapt_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.enabled = True
  c.spec = "predlast+enclast"
  # None: the training rates train.lr_* (the paper adapts at its training rates: 5e-4 / 1e-5 at its scale);
  # `adaptation.learning_rates(cfg)` resolves them.
  c.lr_predictor = ml_collections.config_dict.placeholder(float)
  c.lr_encoder = ml_collections.config_dict.placeholder(float)
  c.steps = 1               # U: gradient steps per replan
  c.optimizer = "adam"      # "adam" (the paper's) | "sgd" (a step proportional to the gradient)
  c.reset_optimizer = True  # the paper's behaviour: fresh Adam moments every replan
  # Beyond the paper: plan with the adapted params only once, summed over the episode so far, they predicted
  # each newly observed transition (before adapting on it) better than the unadapted params; otherwise plan
  # with the unadapted ones. Adaptation goes on either way. One extra one-step forward pass per replan.
  c.guard = False
  c.buffer = "recent"       # "recent" | "hard" | "none" | "unbounded"
  c.buffer_size = 5
  # How the buffer's loss weights its transitions: "uniform" (each stored transition once) or "merged" (the
  # authors' merged sequence: history-frame windows slid over the buffered segment, so recent-5 with history 3
  # weighs its transitions 1, 2, 3, 2, 1 from oldest to newest); "merged" needs a contiguous buffer.
  c.buffer_weighting = "uniform"
  c.lora_rank = 8
  return c


def eval_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.replans = 20
  c.episodes = 50
  c.seeds = 3
  c.seed = 0
  c.batch_size = 64         # at most this many episodes per compiled call (memory; CPU throughput peaks lower)
  return c


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.task = task_config()
  c.data = data_config()
  c.model = model_config()
  c.train = train_config()
  c.plan = plan_config()
  c.adapt = adapt_config()
  c.eval = eval_config()
  return c


def apply_scale(c: ml_collections.ConfigDict, scale: str) -> ml_collections.ConfigDict:
  """Shrinks or grows `c` in place for `scale` in SCALES; unknown scales raise UsageError."""
  if scale not in SCALES:
    raise UsageError(f"Unknown config scale {scale!r}; valid scales: {', '.join(SCALES)}")
  if scale == "tiny":
    c.task.kwargs.image_size = 32
    c.data.update(episodes=16, length=30, shard_episodes=8)
    c.model.update(widths=(8, 16), latent_dim=16, depth=1, heads=2)
    c.train.update(batch_size=8, steps=20, eval_every=10, checkpoint_every=10, warmup_steps=2, eval_batches=2,
                   log_every=5, probe_batches=2)
    c.plan.cem.update(samples=16, elites=4, iterations=2)
    c.plan.gd.update(steps=3)
    c.plan.mppi.update(samples=16, iterations=2)
    c.eval.update(replans=3, episodes=2, seeds=2)
  elif scale == "cpu":
    # Planning dominates evaluation on 2 CPU cores: a quarter of the paper's CEM work per replan
    # (100 samples x 5 iterations instead of 200 x 10; same elite fraction) and 30 GD steps instead of 100.
    c.plan.cem.update(samples=100, elites=15, iterations=5)
    c.plan.mppi.update(samples=100, iterations=5)
    c.plan.gd.update(steps=30)
  elif scale == "paper":
    c.task.kwargs.image_size = 224
    c.model.update(widths=(32, 64, 128, 256, 512), latent_dim=384, depth=6, heads=16)
    c.train.update(batch_size=64, lr_encoder=1e-5, lr_predictor=5e-4, steps=100_000, eval_every=2000,
                   checkpoint_every=2000, warmup_steps=1000)
    c.eval.update(replans=20, episodes=50, seeds=3)
  return c


def push_cpu_settings(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """PushT / PushObj at `cpu` scale, fixed on clean PushT and seen-shape episodes (evaluation seed 0) before any
  shifted run: 2000 episodes, 8000 steps with the curvature regulariser; planning with the
  proprio term weighted 100x (it carries the agent position the visual latent encodes poorly), the
  all-frames 2^i objective from the first replan, and the paper's CEM 200 x 10. The authors' cost (proprio
  weight 1, staged) planned far worse with these models (2026-12-05: PushT frozen 34.7 vs 54.7). Adaptation
  `predlastblock+enclast`, the paper's layers (its predictor has no output map): it tied with `predlast+enclast`
  on clean PushT and seen shapes (2026-12-05), so the faithful one is the default."""
  c.data.episodes = 2000
  c.train.update(steps=8000, curvature_weight=0.1)
  c.plan.update(proprio_weight=100.0, objective="all")
  c.plan.cem.update(samples=200, elites=30, iterations=10)
  c.adapt.spec = "predlastblock+enclast"
  return c


def parse_overrides(text: str) -> dict[str, Any]:
  """'plan.proprio_weight=10.0,plan.planner="gd"' -> {'plan.proprio_weight': 10.0, 'plan.planner': 'gd'}.

  Values are Python literals (quote strings); UsageError names a malformed item. (levers.py's variants; a
  single run is overridden with `--config.section.key=value`.)
  """
  overrides = {}
  for item in filter(None, (i.strip() for i in text.split(","))):
    key, eq, value = item.partition("=")
    if not eq or not key.strip():
      raise UsageError(f"Malformed override {item!r}; expected section.key=value")
    try:
      overrides[key.strip()] = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
      raise UsageError(f"Override {item!r}: {value.strip()!r} is not a Python literal (quote strings)") from None
  return overrides


def parse_variants(text: str) -> list[tuple[str, dict[str, Any]]]:
  """'a:x.y=1,z.w=2;b:' -> [('a', {'x.y': 1, 'z.w': 2}), ('b', {})] (levers.py's and ablate.py's
  `--variants`); UsageError names a malformed part or a repeated name."""
  out = []
  for part in filter(None, (p.strip() for p in text.split(";"))):
    name, sep, body = part.partition(":")
    if not sep or not name:
      raise UsageError(f"Malformed variant {part!r}; expected name:key=value,key=value")
    if name in (n for n, _ in out):
      raise UsageError(f"Variant name {name!r} is used twice")
    out.append((name, parse_overrides(body)))
  if not out:
    raise UsageError("--variants names no variant")
  return out


def apply_overrides(config: ml_collections.ConfigDict, overrides: dict[str, Any]) -> ml_collections.ConfigDict:
  """A copy of `config` with dotted-key overrides ({'plan.proprio_weight': 10.0}); an unknown key raises
  UsageError naming the valid keys at that level (`task.kwargs` accepts new env kwargs)."""
  cfg = ml_collections.ConfigDict(config.to_dict())
  for key, value in overrides.items():
    *path, leaf = key.split(".")
    node = cfg
    for p in path:
      if p not in node:
        raise UsageError(f"Unknown config key {key!r}: no section {p!r}; valid: {', '.join(node.keys())}")
      node = node[p]
    if leaf not in node and path != ["task", "kwargs"]:
      raise UsageError(f"Unknown config key {key!r}; valid keys there: {', '.join(node.keys())}")
    node[leaf] = value
  return cfg
