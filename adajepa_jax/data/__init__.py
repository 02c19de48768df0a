"""Offline data: jitted collection (vmap x scan), chunked shard storage, training windows.

The submodules `collect`, `storage` and `dataset` are the API (`data.collect.collect(env, keys, length)`,
`data.collect.collect_to_dir(...)`, `data.dataset.WindowDataset(...)`); the main names are re-exported here.
"""
from adajepa_jax.data import collect, dataset, storage
from adajepa_jax.data.collect import collect_to_dir, episode_keys, make_collect, task_id
from adajepa_jax.data.dataset import SPLITS, WindowDataset, split_episodes
from adajepa_jax.data.storage import open_shard, read_manifest
