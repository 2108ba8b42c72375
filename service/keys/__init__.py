"""A project's own API keys (POST, GET and DELETE /v1/keys) and its audit log
(GET /v1/audit-events): an admin's, each scoped to the caller's project."""
