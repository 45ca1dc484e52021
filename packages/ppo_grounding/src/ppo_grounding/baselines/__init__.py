"""Baselines (placeholder, written below)."""
