"""Offline data: one jitted collection program, chunked shards + manifest, seeded windows that line up."""
import hashlib
import json
import os
import re
import shutil

import jax
import numpy as np
import pytest

from adajepa_jax import envs
from adajepa_jax.data import collect, dataset, storage

IMAGE = 32
EPISODES = 6
LENGTH = 12
SHARD = 4
HISTORY, FRAMESKIP = 2, 3


@pytest.fixture(scope="module")
def env():
  return envs.make("pushobj", image_size=IMAGE)


@pytest.fixture(scope="module")
def data_dir(env, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("data"))
  calls = []
  collect.collect_to_dir(env, out, EPISODES, LENGTH, seed=3, shard_episodes=SHARD, expert_fraction=0.5,
                         manifest_extra=dict(task="pushobj"), progress=lambda i, n: calls.append((i, n)))
  assert calls == [(0, 2), (1, 2)]
  return out


def test_expert_and_exploration_episodes_mix(data_dir, tmp_path):
  """A data mix: some episodes follow the expert-like pusher, the others explore; the sheet shows both."""
  expert = np.concatenate([_load(os.path.join(data_dir, s["file"]))["expert"]
                           for s in storage.read_manifest(data_dir)["shards"]])
  assert 0 < expert.sum() < EPISODES
  assert storage.read_manifest(data_dir)["expert_episode_fraction"] == pytest.approx(expert.mean())
  sheet = collect.write_contact_sheet(data_dir, str(tmp_path / "sheet.png"), rows=4)
  import imageio.v2 as imageio
  assert imageio.imread(sheet).shape[0] == 4 * (IMAGE + 2) + 2
  with pytest.raises(ValueError, match="expert_fraction"):
    collect.make_collect(envs.make("pointmaze_umaze", image_size=IMAGE), 5, expert_fraction=0.5)


def _load(path):
  return {k: np.asarray(v) for k, v in storage.open_shard(path).items()}


def test_shards_and_manifest(data_dir):
  m = storage.read_manifest(data_dir)
  assert m["complete"] and m["collected_episodes"] == EPISODES and m["task"] == "pushobj"
  assert [s["episodes"] for s in m["shards"]] == [SHARD, EPISODES - SHARD]
  assert 0.0 <= m["contact_fraction"] <= 1.0
  assert m["shape_names"] == ["T", "L", "Z", "+"] and m["fingerprint"]
  for s in m["shards"]:   # the manifest records each shard's size and file checksum
    assert s["bytes"] == os.path.getsize(os.path.join(data_dir, s["file"]))
    assert s["checksum"].startswith("sha256:") and len(s["checksum"]) == 7 + 64
  shard = storage.open_shard(os.path.join(data_dir, m["shards"][0]["file"]))
  assert isinstance(shard["pixels"], np.memmap)   # read lazily, never the whole dataset
  assert shard["pixels"].shape == (SHARD, LENGTH + 1, IMAGE, IMAGE, 3) and shard["pixels"].dtype == np.uint8
  assert shard["proprio"].shape == (SHARD, LENGTH + 1, 4)
  assert shard["actions"].shape == (SHARD, LENGTH, 2) and np.abs(shard["actions"]).max() <= 1.0
  assert shard["states"].shape == (SHARD, LENGTH + 1, 7) and shard["task_ids"].dtype == np.int32
  np.testing.assert_array_equal(shard["proprio"], np.asarray(shard["states"])[..., [0, 1, 5, 6]])


def test_exploration_makes_contact(data_dir):
  """Scripted pushes touch the block in most episodes (random actions: ~3% in the reference)."""
  assert storage.read_manifest(data_dir)["contact_fraction"] > 0.5


def test_same_seed_gives_identical_data(env, data_dir, tmp_path):
  again = str(tmp_path / "again")
  collect.collect_to_dir(env, again, EPISODES, LENGTH, seed=3, shard_episodes=SHARD, expert_fraction=0.5,
                         manifest_extra=dict(task="pushobj"))
  for name in ("shard_00000.npz", "shard_00001.npz"):
    a, b = _load(os.path.join(data_dir, name)), _load(os.path.join(again, name))
    for k in storage.SHARD_KEYS:
      np.testing.assert_array_equal(a[k], b[k])
  # The shard is exactly the jitted program on the first keys; another seed gives other data.
  direct = collect.collect(env, collect.episode_keys(3, EPISODES)[:SHARD], LENGTH, expert_fraction=0.5)
  first = _load(os.path.join(data_dir, "shard_00000.npz"))
  np.testing.assert_array_equal(np.asarray(direct["actions"]), first["actions"])
  other = collect.collect(env, collect.episode_keys(4, EPISODES)[:SHARD], LENGTH, expert_fraction=0.5)
  assert not np.array_equal(np.asarray(other["actions"]), np.asarray(direct["actions"]))


def test_pixels_render_the_stored_states(env, data_dir):
  shard = _load(os.path.join(data_dir, "shard_00000.npz"))
  e, t = 1, LENGTH // 2
  task = env.task_for_shape(int(shard["task_ids"][e]))
  np.testing.assert_array_equal(np.asarray(jax.jit(env.render)(shard["states"][e, t], task)),
                                shard["pixels"][e, t])


def test_actions_line_up_with_the_transitions_they_cause(data_dir):
  """The agent's displacement over step t correlates with action t more than with action t+1."""
  s = np.concatenate([_load(os.path.join(data_dir, f"shard_0000{i}.npz"))["states"] for i in range(2)])
  a = np.concatenate([_load(os.path.join(data_dir, f"shard_0000{i}.npz"))["actions"] for i in range(2)])
  move = s[:, 1:, :2] - s[:, :-1, :2]
  aligned = np.mean(np.sum(move[:, :-1] * a[:, :-1], -1))
  shifted = np.mean(np.sum(move[:, :-1] * a[:, 1:], -1))
  assert aligned > shifted > -abs(aligned)


def test_windows_line_up(data_dir):
  ds = dataset.WindowDataset(data_dir, history=HISTORY, frameskip=FRAMESKIP, split="all", seed=0)
  assert ds.windows_per_episode == LENGTH - HISTORY * FRAMESKIP + 1
  assert len(ds) == EPISODES * ds.windows_per_episode
  shard = _load(os.path.join(data_dir, "shard_00001.npz"))
  episode, start = SHARD + 1, 4        # global episode 5 = shard 1, row 1
  w = ds.window(episode, start)
  for k in range(HISTORY + 1):
    np.testing.assert_array_equal(w["pixels"][k], shard["pixels"][1, start + k * FRAMESKIP])
    np.testing.assert_array_equal(w["states"][k], shard["states"][1, start + k * FRAMESKIP])
  for k in range(HISTORY):   # chunk k = the env actions between frames k and k + 1, flattened
    chunk = shard["actions"][1, start + k * FRAMESKIP:start + (k + 1) * FRAMESKIP]
    np.testing.assert_array_equal(w["actions"][k], chunk.reshape(-1))


def test_batches_and_seeded_split(data_dir):
  kw = dict(history=HISTORY, frameskip=FRAMESKIP, val_fraction=0.34)
  train = dataset.WindowDataset(data_dir, split="train", seed=0, **kw)
  val = dataset.WindowDataset(data_dir, split="val", seed=0, **kw)
  assert set(train.episodes).isdisjoint(val.episodes) and len(val.episodes) == 2
  assert sorted(set(train.episodes) | set(val.episodes)) == list(range(EPISODES))
  np.testing.assert_array_equal(dataset.WindowDataset(data_dir, split="val", seed=0, **kw).episodes,
                                val.episodes)
  splits = {tuple(dataset.split_episodes(EPISODES, 0.34, s)[1]) for s in range(8)}
  assert len(splits) > 1
  b1 = next(train.batches(5, 7))
  b2 = next(train.batches(5, jax.random.key(7)))
  assert b1["pixels"].shape == (5, HISTORY + 1, IMAGE, IMAGE, 3) and b1["pixels"].dtype == np.uint8
  assert b1["proprio"].shape == (5, HISTORY + 1, 4) and b1["proprio"].dtype == np.float32
  assert b1["actions"].shape == (5, HISTORY, 2 * FRAMESKIP) and set(b1) == {"pixels", "proprio", "actions"}
  for k in b1:
    np.testing.assert_array_equal(b1[k], next(train.batches(5, 7))[k])
  assert b2["pixels"].shape == b1["pixels"].shape
  assert len(list(val.batches(3, 0, num_batches=4))) == 4


def test_resume_keeps_written_shards(env, data_dir):
  before = os.path.getmtime(os.path.join(data_dir, "shard_00000.npz"))
  m = collect.collect_to_dir(env, data_dir, EPISODES, LENGTH, seed=3, shard_episodes=SHARD,
                             expert_fraction=0.5, manifest_extra=dict(task="pushobj"))
  assert os.path.getmtime(os.path.join(data_dir, "shard_00000.npz")) == before and m["complete"]


def _copy(data_dir, tmp_path):
  """A copy of the dataset at <tmp_path>/run/data, the layout experiments/collect_data.py writes."""
  return shutil.copytree(data_dir, str(tmp_path / "run" / "data"))


def _resume(env, out):
  return collect.collect_to_dir(env, out, EPISODES, LENGTH, seed=3, shard_episodes=SHARD, expert_fraction=0.5,
                                manifest_extra=dict(task="pushobj"))


def _truncate(path):
  size = os.path.getsize(path)
  with open(path, "r+b") as f:
    f.truncate(size // 2)
  return size


def test_truncated_or_missing_shard_gets_a_clear_error(data_dir, tmp_path):
  """Opening a dataset checks shard sizes: the error names the shard, expected vs found, and the command."""
  out = _copy(data_dir, tmp_path)
  path = os.path.join(out, "shard_00001.npz")
  size = _truncate(path)
  with pytest.raises(storage.ShardError) as err:
    dataset.WindowDataset(out, history=HISTORY, frameskip=FRAMESKIP)
  msg = str(err.value)
  assert isinstance(err.value, ValueError) and err.value.path == path
  assert f"Shard {path} has the wrong size: expected {size} bytes, found {size // 2}" in msg
  assert (f"python experiments/collect_data.py --config=adajepa_jax/configs/pushobj.py:cpu "
          f"--config.task.name=pushobj --config.task.kwargs.image_size={IMAGE} --config.data.episodes={EPISODES} "
          f"--config.data.length={LENGTH} --config.data.seed=3 --config.data.shard_episodes={SHARD} "
          f"--config.data.expert_fraction=0.5 --workdir={tmp_path / 'run'}" in msg)
  os.remove(path)
  with pytest.raises(storage.ShardError, match=re.escape(f"Shard {path} is missing (per ")):
    dataset.WindowDataset(out, history=HISTORY, frameskip=FRAMESKIP)


def test_checksum_catches_flipped_bytes_and_resume_rewrites_them(env, data_dir, tmp_path):
  """Same size, other bytes: the size check passes, the checksum (on demand, and on resume) does not."""
  out = _copy(data_dir, tmp_path)
  path = os.path.join(out, "shard_00000.npz")
  with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) // 2)   # inside the pixels
    chunk = f.read(16)
    f.seek(-16, os.SEEK_CUR)
    f.write(bytes(b ^ 0xFF for b in chunk))
  dataset.WindowDataset(out, history=HISTORY, frameskip=FRAMESKIP)
  expected = f"Shard {path} has the wrong checksum: expected sha256:"
  with pytest.raises(storage.ShardError, match=re.escape(expected)):
    dataset.WindowDataset(out, history=HISTORY, frameskip=FRAMESKIP, verify="checksum")
  _resume(env, out)
  dataset.WindowDataset(out, history=HISTORY, frameskip=FRAMESKIP, verify="checksum")
  clean = _load(os.path.join(data_dir, "shard_00000.npz"))
  np.testing.assert_array_equal(_load(path)["pixels"], clean["pixels"])


def test_resume_rewrites_a_truncated_shard(env, data_dir, tmp_path):
  """Resume keeps the good shard, collects the truncated one again; the data then equals a clean run's."""
  out = _copy(data_dir, tmp_path)
  good = os.path.getmtime(os.path.join(out, "shard_00000.npz"))
  _truncate(os.path.join(out, "shard_00001.npz"))
  m = _resume(env, out)
  assert m["complete"] and os.path.getmtime(os.path.join(out, "shard_00000.npz")) == good
  resumed = dataset.WindowDataset(out, history=HISTORY, frameskip=FRAMESKIP, split="all", verify="checksum")
  clean = dataset.WindowDataset(data_dir, history=HISTORY, frameskip=FRAMESKIP, split="all")
  for a, b in zip(resumed.batches(8, 1, num_batches=3, include_states=True),
                  clean.batches(8, 1, num_batches=3, include_states=True)):
    for k in b:
      np.testing.assert_array_equal(a[k], b[k])


def test_manifest_without_sizes_is_checked_by_checksum(env, data_dir, tmp_path):
  """Older manifests record only a sha1 of the actions, states and task_ids: opening checks it instead."""
  out = _copy(data_dir, tmp_path)
  m = storage.read_manifest(out)
  for s in m["shards"]:
    arrays, digest = _load(os.path.join(out, s["file"])), hashlib.sha1()
    for k in ("actions", "states", "task_ids"):
      digest.update(arrays[k].tobytes())
    del s["bytes"]
    s["checksum"] = digest.hexdigest()[:16]
  storage.write_manifest(out, m)
  dataset.WindowDataset(out, history=HISTORY, frameskip=FRAMESKIP)
  path = os.path.join(out, "shard_00001.npz")
  _truncate(path)
  legacy = m["shards"][1]["checksum"]
  expected = f"Shard {path} has the wrong checksum: expected {legacy}, found an unreadable file (BadZipFile"
  with pytest.raises(storage.ShardError, match=re.escape(expected)):
    dataset.WindowDataset(out, history=HISTORY, frameskip=FRAMESKIP)
  shards = _resume(env, out)["shards"]   # the kept shard gains its size; the rewritten one a file checksum
  assert shards[0]["checksum"] == m["shards"][0]["checksum"] and shards[1]["checksum"].startswith("sha256:")
  assert [s["bytes"] for s in shards] == [os.path.getsize(os.path.join(out, s["file"])) for s in shards]


def test_bad_inputs(data_dir, tmp_path):
  with pytest.raises(ValueError, match="valid splits: train, val, all"):
    dataset.WindowDataset(data_dir, split="test")
  with pytest.raises(ValueError, match="valid choices: size, checksum"):
    dataset.WindowDataset(data_dir, verify="md5")
  with pytest.raises(ValueError, match="exceeds the episode length"):
    dataset.WindowDataset(data_dir, history=5, frameskip=5)
  with pytest.raises(ValueError, match="manifest"):
    dataset.WindowDataset(str(tmp_path))
  with pytest.raises(ValueError, match="val_fraction"):
    dataset.split_episodes(10, 1.0, 0)
  with pytest.raises(ValueError, match="length"):
    collect.make_collect(envs.make("pusht", image_size=IMAGE), 0)
  with pytest.raises(ValueError, match="required"):
    storage.write_shard(str(tmp_path), 0, {"pixels": np.zeros(1)})
  with open(os.path.join(data_dir, "manifest.json")) as f:
    assert json.load(f)["length"] == LENGTH


def test_sharded_collection_equals_one_device(env, data_dir, tmp_path):
  """Each shard's episodes split over the 2 host devices (3 per device, the last shard of 2 padded): the
  written data equal the one-device run's, up to the last bits: sharding changes how XLA vectorises, so
  states agree to float tolerance and a few anti-aliased pixels by one grey level (hence off by default on
  CPU, `sharding.data_parallel_default`)."""
  from adajepa_jax import sharding
  mesh = sharding.make_mesh()
  assert mesh.devices.size == 2
  out = str(tmp_path / "sharded")
  manifest = collect.collect_to_dir(env, out, EPISODES, LENGTH, seed=3, shard_episodes=SHARD,
                                    expert_fraction=0.5, manifest_extra=dict(task="pushobj"), mesh=mesh)
  assert manifest["complete"] and manifest["collected_episodes"] == EPISODES
  assert manifest["fingerprint"] == storage.read_manifest(data_dir)["fingerprint"]
  for name in ("shard_00000.npz", "shard_00001.npz"):
    a, b = _load(os.path.join(data_dir, name)), _load(os.path.join(out, name))
    for k in storage.SHARD_KEYS:
      if k == "pixels":
        diff = np.abs(a[k].astype(int) - b[k].astype(int))
        assert diff.max() <= 1 and np.mean(diff > 0) < 1e-3, (name, diff.max(), np.mean(diff > 0))
      elif a[k].dtype.kind == "f":
        np.testing.assert_allclose(a[k], b[k], atol=1e-4, err_msg=f"{name}: {k}")
      else:
        np.testing.assert_array_equal(a[k], b[k], err_msg=f"{name}: {k}")
  odd = collect.collect(env, collect.episode_keys(3, EPISODES)[:3], LENGTH, expert_fraction=0.5, mesh=mesh)
  assert odd["actions"].shape[0] == 3 and isinstance(odd["actions"], np.ndarray)
