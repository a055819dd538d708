"""The two halves of the segment path meet: a local file goes to an S3-compatible store
(moto's server process, the real boto3 client) once, the segment worker reads it back by
the presigned URL alone, and the report equals the single-machine one in its detections.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import OFFLINE_CONFIG, ROOT
from s3_server import ACCESS_KEY, SECRET_KEY, start_s3_server

sys.path.insert(0, str(ROOT / "scripts"))
from make_clips import make  # noqa: E402

BUCKET = "fleet-media"
FAST = ("--config", OFFLINE_CONFIG, "--detect-size", "128", "--detect-fps", "5", "--format", "json",
        "--backend", "local", "--no-transcribe", "--no-cache")


@pytest.fixture(scope="module")
def s3():
    server = start_s3_server()
    server.client().create_bucket(Bucket=BUCKET)
    yield server
    server.close()


def store_env(s3) -> dict:
    return {"VIDAGENT_OBJECT_STORE_BUCKET": BUCKET, "VIDAGENT_OBJECT_STORE_ENDPOINT_URL": s3.url,
            "VIDAGENT_OBJECT_STORE_REGION": "us-east-1", "VIDAGENT_OBJECT_STORE_ACCESS_KEY_ID": ACCESS_KEY,
            "VIDAGENT_OBJECT_STORE_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_EC2_METADATA_DISABLED": "true"}


def detections(folder: Path) -> list[tuple]:
    report = json.loads((folder / "report.json").read_text())
    return [(d["t"], tuple(o["label"] for o in d["objects"])) for d in report["detections"]]


def test_a_local_file_is_uploaded_once_and_read_by_its_presigned_url(s3, tmp_path, run_cli):
    (tmp_path / "clips").mkdir()
    clip = make(tmp_path / "clips", "c2997", 12.0, keyframe_s=1.0)
    single = run_cli("analyze", clip, "--out", tmp_path / "single", *FAST, "--segments", "off")
    assert single.code == 0, single
    env = store_env(s3)
    first = run_cli("analyze", clip, "--out", tmp_path / "first", *FAST, "--segments", "on", "--segment-seconds", "4",
                    env=env)
    assert first.code == 0, first
    second = run_cli("analyze", clip, "--out", tmp_path / "second", *FAST, "--segments", "on",
                     "--segment-seconds", "4", env=env)
    assert second.code == 0, second

    name = clip.stem
    assert detections(tmp_path / "first" / name) == detections(tmp_path / "single" / name)
    timings = [json.loads((tmp_path / run / name / "report.json").read_text())["timings"] for run in ("first", "second")]
    assert timings[0]["segments"] >= 3
    assert timings[0]["uploaded_bytes"] == clip.stat().st_size  # the file, once
    assert timings[1]["uploaded_bytes"] == 0  # already there under its content hash
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert len(keys) == 1 and keys[0].endswith(".mp4")

    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".mp4")
    said = (first.stdout + first.stderr + second.stdout + second.stderr).encode()
    for secret in (SECRET_KEY.encode(), b"X-Amz-Signature"):
        assert secret not in written and secret not in said
