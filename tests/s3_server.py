"""A real S3 wire-protocol server for the tests: moto's standalone server (`python -m
moto.server`) as its own process on 127.0.0.1, spoken to by the real boto3 client.

moto enforces ACLs for unsigned requests (a private object answers 403) and honours Range
requests; it does not check a presigned URL's expiry or its signature, which is AWS's and
R2's job: the tests check what the client controls (X-Amz-Expires, X-Amz-Date, the host).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx

ACCESS_KEY = "AKIAVIDAGENTTEST0001"
SECRET_KEY = "vidagent-test-secret-Zq8nT4wXr2bY6uPc"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class S3Server:
    url: str
    proc: subprocess.Popen

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, config=Config(signature_version="s3v4"))

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_s3_server(timeout: float = 60) -> S3Server:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:  # ready when it answers; it imports moto's services first (seconds)
        if proc.poll() is not None:
            raise RuntimeError(f"moto.server exited with {proc.returncode}")
        try:
            httpx.get(f"{url}/moto-api/", timeout=2)
            return S3Server(url, proc)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("moto.server did not start") from None
            time.sleep(0.1)
