"""Evaluation metrics, each a small object with reset/update/compute (as in torchmetrics)."""
