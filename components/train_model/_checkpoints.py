"""Checkpoints that outlive the pod: Keras writes them to a local folder, and when the
checkpoint URI is remote (minio://, gs://, s3://) that folder is restored from it before
training and mirrored to it after every epoch. A retried task on a fresh pod, with an empty
filesystem, then resumes from the last completed epoch: weights, optimizer state, epoch and
(because each epoch's shuffle order is seeded by its index) the order of the examples.

In a multi-worker job every worker resumes from the one checkpoint, but only the chief writes
it: the other workers restore it into a scratch folder and keep their own backups there
(Keras's BackupAndRestore knows nothing of workers; two of them writing one file corrupt it)."""

from __future__ import annotations

import json
import logging
import os
import tempfile

from components import uris

logger = logging.getLogger(__name__)

BACKUP_SUBDIR = "backup"
"""keras.callbacks.BackupAndRestore's folder inside the checkpoint folder."""


class Checkpoints:
    """The checkpoint folder at ``uri``; ``writer`` is False on a multi-worker job's non-chief
    workers, which read the chief's backup and write nothing to ``uri``."""

    def __init__(self, uri: str, writer: bool = True):
        self.uri = uri
        self.writer = writer
        local = uris.local_path(uri) if writer else None
        self.remote = local is None  # local_dir is a copy of uri
        self.local_dir = local or tempfile.mkdtemp(prefix="checkpoints-")
        os.makedirs(self.local_dir, exist_ok=True)
        if self.remote:
            # A reader needs only the backup (the training log and MLflow run id are the chief's).
            source, target = (
                (uri, self.local_dir) if writer else (uris.join(uri, BACKUP_SUBDIR), self.backup_dir)
            )
            restored = uris.download_dir(source, target)
            if restored:
                logger.info("restored %d checkpoint files from %s", restored, source)

    @property
    def backup_dir(self) -> str:
        return os.path.join(self.local_dir, BACKUP_SUBDIR)

    def completed_epochs(self) -> int:
        """Epochs a previous attempt finished (0 when there is no backup)."""
        path = os.path.join(self.backup_dir, "training_metadata.json")
        if not os.path.exists(path):
            return 0
        with open(path) as f:
            return int(json.load(f).get("epoch", 0))

    def callback(self):
        """Mirrors the folder after every epoch (after BackupAndRestore and the log wrote) and
        drops the remote backup once training finished, as BackupAndRestore does locally."""
        import keras

        return keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: self.sync(),
            on_train_end=lambda logs: self.sync(finished=True),
        )

    def sync(self, finished: bool = False) -> None:
        if not (self.remote and self.writer):
            return
        if finished:
            uris.delete_dir(uris.join(self.uri, BACKUP_SUBDIR))
        uris.upload_dir(self.local_dir, self.uri)
