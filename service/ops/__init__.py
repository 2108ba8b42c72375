"""What operators poll: the liveness and readiness probes and the Prometheus scrape."""
