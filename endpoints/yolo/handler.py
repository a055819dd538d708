"""RunPod endpoint: YOLO11 object detection. The worker itself is vidagent/workers/yolo.py.

VIDAGENT_YOLO_MODEL names the weights to load at start (baked into the image).
"""

import os

from vidagent.workers import serverless, yolo

serverless.start(
    yolo.handle,
    load=lambda: yolo.load(os.environ.get("VIDAGENT_YOLO_MODEL", yolo.DEFAULT_MODEL)),
)
