"""Baseline models, registered through the `mmbench.models` entry points like any plugin."""
