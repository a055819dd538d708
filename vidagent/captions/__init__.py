"""Captions: when to ask the VLM (policy), what to ask it (prompt), how to read it (parse)."""
