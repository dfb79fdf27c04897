"""Decode a test set, score it, measure its cost."""
