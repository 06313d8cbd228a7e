"""Trains the demo model in a container with checkpoints at an object-store URI, for
test_resume.py. Prints one JSON line: the final weights and how many epochs this attempt ran.

    python resume_training.py CHECKPOINT_URI [--kill-after-epoch N]

With --kill-after-epoch the process SIGKILLs itself at the end of epoch N (after the
checkpoint was mirrored), the way a preempted pod dies: no cleanup, no exception handling.
"""

import argparse
import json
import os
import signal
import sys
import tempfile

import keras
import tensorflow_data_validation as tfdv

from components.make_demo_data import runtime as demo
from components.train_model import runtime

EPOCHS = 4


class KillAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            print(json.dumps({"killed_after_epoch": self.epoch}), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint_uri")
    parser.add_argument("--kill-after-epoch", type=int, default=0)
    args = parser.parse_args()
    work = tempfile.mkdtemp()
    frame = demo.generate(800, seed=1)
    data = demo.write(frame, os.path.join(work, "data.csv"))
    schema = os.path.join(work, "schema.pbtxt")
    tfdv.write_schema_text(tfdv.infer_schema(tfdv.generate_statistics_from_dataframe(frame)), schema)
    result = runtime.run(
        label=demo.LABEL, data_uri=str(data), schema_path=schema, model_dir=os.path.join(work, "model"),
        eval_data_path=os.path.join(work, "eval.parquet"), epochs=EPOCHS, early_stopping_patience=0,
        hidden_units=[16], dropout=0.0, checkpoint_uri=args.checkpoint_uri, verbose=0,
        callbacks=[KillAfterEpoch(args.kill_after_epoch)] if args.kill_after_epoch else [],
    )
    weights = [w.tolist() for w in result.keras_model.get_weights()]
    print(json.dumps({"epochs_this_attempt": result.metrics["epochs_this_attempt"], "weights": weights}))


if __name__ == "__main__":
    sys.exit(main())
