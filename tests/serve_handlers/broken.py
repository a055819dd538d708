"""Test handler that cannot start: its import fails before runpod.serverless.start."""

import vidagent_no_such_module  # noqa: F401
