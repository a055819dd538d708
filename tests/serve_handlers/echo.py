"""Test handler: sleeps input["sleep"] seconds, then echoes the input.

input["raise"] makes it raise (a handler exception); input["error"] makes it return
{"error": ...} (a clean failure, as vidagent's workers report bad input);
input["size_only"] returns the input's size instead of the input (big payloads).
"""

import asyncio
import json
import os

import runpod


async def handler(job):
    job_input = job["input"]
    await asyncio.sleep(float(job_input.get("sleep", 0)))
    if "raise" in job_input:
        raise RuntimeError(job_input["raise"])
    if "error" in job_input:
        return {"error": job_input["error"]}
    if job_input.get("size_only"):
        return {"bytes": len(json.dumps(job_input))}
    return {"echo": job_input, "worker": os.environ.get("RUNPOD_POD_ID")}


runpod.serverless.start({"handler": handler})
