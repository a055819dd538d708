"""RunPod endpoint: Faster-Whisper transcription, a drop-in for `worker-faster_whisper`.

The worker itself is vidagent/workers/whisper.py. VIDAGENT_WHISPER_MODEL names the model
to load at start (baked into the image).
"""

from vidagent.workers import serverless, whisper

serverless.start(whisper.handle, load=whisper.load, concurrency=4)
