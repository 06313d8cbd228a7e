"""Late labels joined to logged rows (prediction_log.join_labels), as the monitor and the
canary judge both read them."""

import numpy as np
import pandas as pd
import pytest

from components import measures, prediction_log


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
