"""Model code: estimator factory, the MLflow model wrapper, metrics and tracking."""
