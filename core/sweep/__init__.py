"""Hyperparameter sweeps of a classifier recipe with Optuna: a search space, a sampler, a pruner, a study."""
