"""RunPod worker for Qwen3-VL without vLLM: transformers in-process, vLLM's job contract.

Production runs RunPod's own vLLM worker (see this folder's README). This shim serves the
same `{"openai_route", "openai_input"}` jobs from vidagent/workers/vlm.py, for `vidagent
serve` and machines where vLLM does not run. VIDAGENT_VLM_MODEL names the model to load
at start (default Qwen/Qwen3-VL-8B-Instruct; `offline:qwen3-vl-tiny` needs no hub).
"""

from vidagent.workers import serverless, vlm

serverless.start(vlm.handle, load=vlm.load)
