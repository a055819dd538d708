"""The exception tree. Every error a user can cause or fix is a VidagentError.

The CLI turns these into one line on stderr and an exit code; anything else is a bug
and keeps its traceback. Messages name the file or field and say what to do.
"""

from __future__ import annotations


class VidagentError(Exception):
    """Base of every expected failure."""

    exit_code = 1


class ConfigError(VidagentError):
    """Bad flag, environment variable or config file: nothing was run."""

    exit_code = 2


class MediaError(VidagentError):
    """An input file cannot be analysed (missing, empty, not media, no video)."""


class ModelError(VidagentError):
    """A model cannot be found or loaded."""


class BackendError(VidagentError):
    """A transport or worker could not complete a job."""


class JobFailed(BackendError):
    """The worker ran the job and reported a failure.

    `retryable` is False when the input was bad (the worker said so): sending it again
    cannot help, so it is never resent. True when the worker broke (a crash, out of
    memory, a killed process): the pipeline runs the job again, a bounded number of times.
    """

    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


class JobTimeout(BackendError):
    """A job did not finish within its time limit."""


class Stalled(VidagentError):
    """A video made no progress for stall_timeout_s: it fails instead of waiting forever."""


class PipelineError(VidagentError):
    """The pipeline would wait for something nothing in flight can deliver (a bug): the
    video fails at once with the stage named, instead of hanging."""


class DeployError(VidagentError):
    """Docker, the registry or RunPod refused a step of `vidagent deploy`."""


class ApiRefused(DeployError):
    """RunPod's REST API answered a 4xx other than 401/403; `message` is its problem body in one line."""

    def __init__(self, status: int, what: str, message: str):
        super().__init__(f"RunPod refused {what} ({status}): {message}")
        self.status = status
        self.what = what
        self.message = message


class JobsLeftRunning(BackendError):
    """Jobs the client started and could not confirm cancelled: they may still be billing.
    `jobs` maps each endpoint to their ids; the message has one line per endpoint."""

    def __init__(self, jobs: dict[str, list[str]]):
        lines = [f"{endpoint}: {', '.join(ids)}" for endpoint, ids in sorted(jobs.items())]
        count = sum(len(ids) for ids in jobs.values())
        super().__init__(
            f"{count} RunPod job(s) could not be confirmed cancelled and may still be running; "
            "cancel them in the console or with POST /v2/ENDPOINT_ID/cancel/JOB_ID:\n" + "\n".join(lines)
        )
        self.jobs = jobs


class Interrupted(VidagentError):
    """The user or the CI runner stopped the run (SIGINT/SIGTERM)."""

    exit_code = 130


class StoreError(VidagentError):
    """The object store (S3, R2, RunPod's S3 API) refused or could not be reached:
    missing bucket, access denied, no credentials, endpoint down (vidagent/storage)."""


class IndexStoreError(VidagentError):
    """The search index cannot be opened, read or written (vidagent/index)."""
