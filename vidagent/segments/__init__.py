"""The segment path: the fleet decodes, the client only plans and merges.

`source.py` says what a worker can read (a URL, an object-store key, or here a local
path); `keyframes.py` probes a URL for the container's facts and its keyframes without
decoding; `planner.py` (pure) cuts the video into segments at keyframes; the worker is
`vidagent/workers/segment.py`; `combine.py` (pure) puts the segments' results back on
one timeline; `vidagent/pipeline/segmented.py` runs it all.
"""
