"""The report: a versioned pydantic schema, the merge onto one timeline, and its writers."""

from .model import SCHEMA_VERSION, Report

__all__ = ["SCHEMA_VERSION", "Report"]
