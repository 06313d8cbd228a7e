"""build_training_set: a point-in-time correct training set from a Feast feature store."""
