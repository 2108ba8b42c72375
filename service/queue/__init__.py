"""The job queue and the worker process that runs its jobs.

claims: the queue as a small state machine (queued -> running -> succeeded | failed |
cancelled), each transition one short transaction with a lease and a fencing token.
worker: the process that claims jobs, trains them with the engine and reports back.
scoring_claims, scoring: scoring tasks (batch predictions, evaluations of a stored dataset),
claimed and fenced as jobs are, scored block by block by the same workers.
"""
