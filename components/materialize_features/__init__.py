"""materialize_features: a Feast offline store's latest values into its online store."""
