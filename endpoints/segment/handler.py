"""RunPod endpoint: one time segment of a video, decoded here from its URL (byte ranges)
and run through YOLO and Whisper on this worker's GPU. The worker itself is
vidagent/workers/segment.py.

VIDAGENT_YOLO_MODEL and VIDAGENT_WHISPER_MODEL name the models to load at start (both
baked into the image). Two segments at a time: each decodes on CPU threads while the
other's batch is on the GPU.
"""

from vidagent.workers import segment, serverless

serverless.start(segment.handle, load=segment.load, concurrency=2)
