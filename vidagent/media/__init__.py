"""Media: probing inputs and extracting frames and audio, each stream decoded once.

FFmpeg's libraries run in-process through PyAV (see docs/decisions.md): every frame keeps
its true presentation timestamp. The video is decoded in a child process (`child.py`),
the audio through a demuxer of its own (`soundtrack.extract_audio`). Import the modules
themselves: this package imports nothing, so starting the child costs no imports here.
"""
