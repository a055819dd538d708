"""Test handler: a generator that yields input["chunks"] partial outputs, one every input["gap"] s."""

import asyncio

import runpod


async def handler(job):
    job_input = job["input"]
    for index in range(int(job_input.get("chunks", 3))):
        await asyncio.sleep(float(job_input.get("gap", 0.05)))
        yield {"index": index}


runpod.serverless.start({"handler": handler, "return_aggregate_stream": True})
