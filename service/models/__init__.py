"""Fitted models: read, downloaded, and asked for predictions.

router (HTTP) -> service (read, a per-process cache of classifiers, predictions).
"""
