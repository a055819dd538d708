"""RunPod endpoint: YOLO11 object detection. The worker itself is vidagent/workers/yolo.py.

VIDAGENT_YOLO_MODEL names the weights to load at start (baked into the image).
"""

from vidagent.workers import serverless, yolo

serverless.start(yolo.handle, load=yolo.load, concurrency=16)
