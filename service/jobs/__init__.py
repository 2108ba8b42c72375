"""Training jobs: recorded by the API, claimed and trained by the queue's workers.

router (HTTP, live events) -> service (create, read, list, cancel) and history.
"""
