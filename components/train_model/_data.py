"""Train/eval split and the tf.data input pipeline.

Rows are typed once, in memory, with ``model_io.column_values``: the very conversion serving
clients use, so the model sees the same values in training and in serving. The pipeline
shuffles row indices and gathers whole batches (one vectorized op per batch, not one per
example), and the training stream repeats (one iterator for the whole fit, fed with
``steps_per_epoch``), so the next epoch's batches are prefetched while the current one
trains instead of the accelerator idling at every epoch boundary. Evaluation batches are
cached. bench/training.py measures it against cached in-memory tensors.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from components import model_io

logger = logging.getLogger(__name__)

DTYPES = {"float": "float32", "int": "int64", "string": "string"}


def split(
    df: pd.DataFrame, eval_fraction: float, seed: int, timestamp_column: str = ""
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and eval frames: the latest ``eval_fraction`` rows by ``timestamp_column`` when
    given (no training on the future), else a seeded random split."""
    n_eval = int(round(len(df) * eval_fraction))
    n_eval = min(max(n_eval, 1), len(df) - 1)
    if timestamp_column:
        if timestamp_column not in df.columns:
            raise ValueError(
                f"timestamp_column {timestamp_column!r} is not in the data; columns are {list(df.columns)}"
            )
        stamps = df[timestamp_column]
        if not pd.api.types.is_numeric_dtype(stamps):
            stamps = pd.to_datetime(stamps, errors="coerce", utc=True)
        order = np.argsort(stamps.to_numpy(), kind="stable")
        logger.info("time-based split on %r: latest %d rows are eval", timestamp_column, n_eval)
    else:
        order = np.random.default_rng(seed).permutation(len(df))
        logger.info("random split (seed %d): %d eval rows", seed, n_eval)
    train_idx, eval_idx = np.sort(order[: len(df) - n_eval]), np.sort(order[len(df) - n_eval :])
    return df.iloc[train_idx].reset_index(drop=True), df.iloc[eval_idx].reset_index(drop=True)


def feature_arrays(df: pd.DataFrame, specs) -> dict[str, np.ndarray]:
    """``{feature: array}`` with the serving dtypes and missing-value conventions."""
    return {s.name: model_io.column_values(df[s.name], DTYPES[s.kind]) for s in specs}


def make_dataset(
    x: dict[str, np.ndarray],
    y: np.ndarray,
    batch_size: int,
    *,
    training: bool,
    seed: int,
    first_epoch: int = 0,
):
    """A tf.data pipeline of (features, label) batches.

    Training: an endless stream of epochs (pass ``steps_per_epoch(n, batch_size)`` to
    ``fit``) starting at ``first_epoch`` (a resumed run); epoch k is a permutation of all rows
    seeded by (k, seed), so the order is reproducible, differs per epoch and is the same for
    epoch k whether or not training was interrupted before it. Cut into index batches,
    gathered in parallel and prefetched. Eval: fixed order, cached.
    """
    import tensorflow as tf

    n = len(y)
    features = {name: tf.constant(values) for name, values in x.items()}
    labels = tf.constant(y)
    full_batches = n // batch_size

    def gather(index):
        return {k: tf.gather(v, index) for k, v in features.items()}, tf.gather(labels, index)

    def epoch_batches(epoch_seed):
        # One vectorized permutation per epoch: cheaper per example than a shuffle buffer,
        # which matters when the pipeline shares the CPU with the training step.
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([epoch_seed, tf.constant(seed, tf.int64)])
        )
        cut = full_batches * batch_size
        batches = tf.data.Dataset.from_tensor_slices(tf.reshape(order[:cut], [full_batches, batch_size]))
        if n % batch_size:
            batches = batches.concatenate(tf.data.Dataset.from_tensors(order[cut:]))
        return batches

    if training:
        ds = tf.data.Dataset.counter(first_epoch).flat_map(epoch_batches)
        ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = tf.data.Dataset.range(n).batch(batch_size).map(gather).cache()
    options = tf.data.Options()
    # In-memory data has no files to shard: multi-worker training shards by batch.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(rows: int, batch_size: int) -> int:
    """Batches in one pass over ``rows`` (the last one may be partial)."""
    return -(-rows // batch_size)
