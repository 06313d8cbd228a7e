"""Prediction logs read back while a server still appends to them, and late labels joined to
logged rows (prediction_log.join_labels), as the monitor and the canary judge both read them."""

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from components import measures, prediction_log


def written(tmp_path, *request_ids):
    writer = prediction_log.Writer(str(tmp_path))
    when = datetime(2026, 12, 1, 21, 14, tzinfo=timezone.utc)
    for request_id in request_ids:
        entry = prediction_log.record(
            request_id=request_id, model="churn", version="1", inputs=[{"city": "Zurich"}], outputs=[0.5],
            time=when,
        )
        writer.write(entry)
    writer.close()
    return writer.path_for("churn", when)


def test_a_line_still_being_written_is_not_read_yet(tmp_path):
    path = written(tmp_path, "a", "b")
    whole = open(path, "rb").read()
    in_flight = whole.splitlines(keepends=True)[0]
    cut = in_flight.index(b"Z") + 2  # inside the quoted value
    with open(path, "ab") as out:
        out.write(in_flight[:cut])
    assert prediction_log.read(str(tmp_path), "churn")["request_id"].tolist() == ["a", "b"]
    with open(path, "ab") as out:  # the writer finishes the line: now it is a record
        out.write(in_flight[cut:])
    assert prediction_log.read(str(tmp_path), "churn")["request_id"].tolist() == ["a", "a", "b"]


def test_a_broken_record_is_named_by_file_and_line(tmp_path):
    path = written(tmp_path, "a")
    with open(path, "ab") as out:
        out.write(b'{"id": "b", "tim\n')
    with pytest.raises(ValueError, match=r"\.jsonl line 2 is not a prediction-log record"):
        prediction_log.read(str(tmp_path), "churn")


def logged(request_ids, rows=None):
    return pd.DataFrame({"request_id": request_ids, "row": rows or [0] * len(request_ids)})


def test_labels_join_by_request_and_row_and_a_corrected_label_wins():
    rows = logged(["a", "a", "b", "c"], [0, 1, 0, 0])
    labels = pd.DataFrame({"request_id": ["a", "a", "b", "b", "z"], "row": [0, 1, 0, 0, 0],
                           "churned": [1, 0, 0, 1, 1]})
    values, mask = prediction_log.join_labels(rows, labels, "churned")
    assert mask.tolist() == [True, True, True, False]  # "c" has no label, "z" was never served
    assert values.tolist() == [1, 0, 1]  # b's later line corrects its label


def test_ids_spelled_as_numbers_or_strings_join():
    values, mask = prediction_log.join_labels(
        logged(["7", "8"]), pd.DataFrame({"request_id": [7, 8], "churned": [0, 1]}), "churned"
    )
    assert mask.all() and values.tolist() == [0, 1]


def test_unjoinable_labels_are_named():
    rows = logged(["a", "a"], [0, 1])
    with pytest.raises(ValueError, match="no label column 'churned'"):
        prediction_log.join_labels(rows, pd.DataFrame({"request_id": ["a"]}), "churned")
    with pytest.raises(ValueError, match="several rows"):
        prediction_log.join_labels(rows, pd.DataFrame({"request_id": ["a"], "churned": [1]}), "churned")
    with pytest.raises(ValueError, match="join key 'customer'"):
        labels = pd.DataFrame({"customer": ["a"], "churned": [1]})
        prediction_log.join_labels(rows, labels, "churned", "customer")


def test_labels_are_encoded_as_the_predictions_are_laid_out():
    assert measures.encode_labels(pd.Series(["1", 0, True]), "binary", [0, 1]).tolist() == [1, 0, 1]
    assert np.allclose(measures.encode_labels(pd.Series(["1.5", 2]), "regression", None), [1.5, 2.0])
    with pytest.raises(ValueError, match=r"\['maybe'\] are not among"):
        measures.encode_labels(pd.Series(["maybe"]), "binary", [0, 1])
    with pytest.raises(ValueError, match="must be numbers"):
        measures.encode_labels(pd.Series(["high"]), "regression", None)
