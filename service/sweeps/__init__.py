"""Sweeps: a grid or random search over hyperparameters, one child job per trial."""
