"""Example experiments: an MLP with every knob a hyperparameter, offline datasets, a train
function that reports through `runner.report`, and sweep specs under experiments/sweeps/."""
