"""The core every feature stands on: settings, the database and its tables, errors as
problem+json, logs, metrics, API keys, pagination and request limits.

Nothing here imports a feature package (datasets, jobs, models, sweeps, queue) or a page.
"""
