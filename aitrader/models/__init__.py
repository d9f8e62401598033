"""The ML ensemble: labels, splits, six models, the registry and ml_predictor."""
