"""vidagent: a timestamped account of what is seen and said in video files."""

__version__ = "0.1.0"
