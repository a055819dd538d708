"""Analyse one video: probe, one decode pass, jobs to the models, merge into a Report.

`video.py` runs one video (and its watchdog), `run.py` starts and collects its jobs,
`language.py` fixes the spoken language once, `merge.py` builds the report,
`streams.py` reads the blocking extractors on threads.
"""

from .video import VideoProgress, analyze_video, endpoint_limits, first_error

__all__ = ["VideoProgress", "analyze_video", "endpoint_limits", "first_error"]
