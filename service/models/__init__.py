"""Fitted models: read, downloaded, and asked for predictions.

router (HTTP) -> service (read, a per-process cache of classifiers, predictions).
scoring_router (HTTP) -> scoring, scoring_results: batch predictions and evaluations of a
stored dataset (queued for workers: service.queue.scoring), their results streamed.
"""
