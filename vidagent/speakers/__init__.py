"""Speakers: per-video clustering of every chunk's speaker evidence (timeline.py,
cluster.py) and their place on transcript segments and words (assign.py)."""
