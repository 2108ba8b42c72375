"""The states of a job: the queue is a small state machine over them.

    queued -> running                    a worker claims it (service.queue.claims)
    running -> succeeded | failed        the fit ends: done, diverged, or out of attempts
    running -> queued                    its worker stopped or its lease expired: claimed again
    queued -> cancelled                  cancelled before any worker took it
    running -> cancelling -> cancelled   a running job stops at its next epoch

Terminal states never change again. Workers make the transitions (service.queue.claims),
each one short transaction; the API queues and cancels jobs (service.jobs.service).
"""

QUEUED, RUNNING, CANCELLING = "queued", "running", "cancelling"
SUCCEEDED, FAILED, CANCELLED = "succeeded", "failed", "cancelled"
JOB_STATES = (QUEUED, RUNNING, CANCELLING, SUCCEEDED, FAILED, CANCELLED)
TERMINAL_STATES = (SUCCEEDED, FAILED, CANCELLED)
LIVE_STATES = (QUEUED, RUNNING, CANCELLING)
