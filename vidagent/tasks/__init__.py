"""Tasks: what to ask each worker and how to read its answer.

Each task module builds job payloads from media items and parses job outputs into report
objects. Pure functions: no I/O, no transport.
"""
