"""`vidagent serve`: RunPod serverless on this machine, for handlers and for clients.

Real handler scripts (`runpod.serverless.start(...)`) run unchanged as worker processes
against RunPod's worker job API served here, and clients talk to RunPod's documented
REST API (`/v2/{endpoint}/run`, `/status/{id}`, …). Modules: `config` (what to run),
`jobs` (the job state machine, pure), `app` (the HTTP routes), `workers` (processes),
`faults` (injected failures), `rest` (RunPod's REST API for templates and endpoints,
what `vidagent deploy` calls), `server` (one run, start to stop). See docs/serve.md.
"""
