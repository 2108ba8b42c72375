"""Pydantic schemas: a family per resource (XCreate in, XPublic out, XsPublic pages)."""
