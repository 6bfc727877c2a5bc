"""The pipeline stages (simulate, validate, featurize, train, evaluate, score) and the CLI."""
