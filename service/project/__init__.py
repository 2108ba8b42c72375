"""/v1/project: the caller's project, its quotas and what it uses of them (docs/quotas.md)."""
