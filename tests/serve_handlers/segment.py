"""The segment worker under RunPod's SDK, as endpoints/segment/handler.py runs it in its image."""

from vidagent.workers import segment, serverless

serverless.start(segment.handle, load=segment.load, concurrency=1)
