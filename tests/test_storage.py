"""The object store against a real S3 wire-protocol server (moto's, its own process) through
the real boto3 client: uploads once by content hash, multipart, private objects, presigned
URLs that plain httpx and PyAV read by byte ranges, and one-line errors."""

from __future__ import annotations

import hashlib
import json
import os
import time
from fractions import Fraction
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from conftest import SAMPLE
from s3_server import ACCESS_KEY, SECRET_KEY, free_port, start_s3_server
from vidagent.config import Settings
from vidagent.errors import ConfigError, StoreError
from vidagent.storage import client as store_client
from vidagent.storage import upload as publishing
from vidagent.storage import publish, resolve_url, store_configured

BUCKET = "vidagent-media"
PUBLIC = ("http://acs.amazonaws.com/groups/global/AllUsers", "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")


@pytest.fixture(autouse=True)
def no_ambient_aws(monkeypatch, tmp_path):
    """This machine's own AWS settings must not decide a test."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
                 "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "aws-empty").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-empty"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-empty"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store_client._clients.clear()  # a client keeps the credentials it found when it was made


@pytest.fixture(scope="session")
def s3():
    server = start_s3_server()
    server.client().create_bucket(Bucket=BUCKET)
    yield server
    server.close()


@pytest.fixture
def settings(s3, request) -> Settings:
    return Settings(object_store_bucket=BUCKET, object_store_endpoint_url=s3.url, object_store_region="us-east-1",
                    object_store_prefix=f"t/{request.node.name[:40]}", object_store_access_key_id=ACCESS_KEY,
                    object_store_secret_access_key=SECRET_KEY, object_store_url_ttl_s=600)


def sent_operations(settings: Settings) -> list[str]:
    """The S3 operations the store's own client puts on the wire from now on."""
    sent: list[str] = []
    client = store_client.s3_client(settings)
    client.meta.events.register("before-call.s3", lambda model, **kw: sent.append(model.name))
    return sent


def test_a_file_is_uploaded_once_under_its_content_hash(s3, settings):
    sent = sent_operations(settings)
    first = publish(SAMPLE, settings)
    digest = hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    assert first.content_hash == digest and first.key == f"{settings.object_store_prefix}/{digest}.mp4"
    assert first.uploaded_bytes == SAMPLE.stat().st_size
    stored = s3.client().get_object(Bucket=BUCKET, Key=first.key)
    assert stored["Body"].read() == SAMPLE.read_bytes() and stored["Metadata"]["sha256"] == digest
    assert "PutObject" in sent

    sent.clear()
    again = publish(SAMPLE, settings)
    assert again.uploaded_bytes == 0 and again.key == first.key
    assert sent == ["HeadObject"]  # looked, sent nothing


def test_a_truncated_object_under_the_key_is_replaced(s3, settings):
    digest = hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    key = f"{settings.object_store_prefix}/{digest}.mp4"
    s3.client().put_object(Bucket=BUCKET, Key=key, Body=SAMPLE.read_bytes()[:1000])
    assert publish(SAMPLE, settings).uploaded_bytes == SAMPLE.stat().st_size
    assert s3.client().head_object(Bucket=BUCKET, Key=key)["ContentLength"] == SAMPLE.stat().st_size


def test_a_big_file_goes_up_in_parts(s3, settings, tmp_path, monkeypatch):
    part = 5 * 1024 * 1024  # S3's (and moto's) smallest part
    monkeypatch.setattr(publishing, "MULTIPART_BYTES", part)
    monkeypatch.setattr(publishing, "PART_BYTES", part)
    big = tmp_path / "big.MKV"
    big.write_bytes(os.urandom(2 * part + 12345))
    sent = sent_operations(settings)
    published = publish(big, settings)
    assert sent.count("UploadPart") == 3 and "CompleteMultipartUpload" in sent and "PutObject" not in sent
    assert published.key.endswith(".mkv") and published.uploaded_bytes == big.stat().st_size
    body = s3.client().get_object(Bucket=BUCKET, Key=published.key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == published.content_hash == hashlib.sha256(big.read_bytes()).hexdigest()


def test_a_cancelled_upload_leaves_no_parts_and_no_object(s3, settings, tmp_path, monkeypatch):
    """Ctrl-C during a big upload: the pipeline sets `cancel`; the multipart upload is aborted,
    so no parts are left in the bucket (billed, invisible) and no object under the key."""
    import threading

    from vidagent.errors import Interrupted

    part = 5 * 1024 * 1024
    monkeypatch.setattr(publishing, "MULTIPART_BYTES", part)
    monkeypatch.setattr(publishing, "PART_BYTES", part)
    monkeypatch.setattr(publishing, "UPLOAD_THREADS", 1)  # parts one after another: the cancel lands mid-way
    big = tmp_path / "long.mp4"
    big.write_bytes(os.urandom(8 * part))
    cancel = threading.Event()
    sent = sent_operations(settings)
    store_client.s3_client(settings).meta.events.register(
        "before-call.s3.UploadPart", lambda **kw: cancel.set())
    with pytest.raises(Interrupted, match="long.mp4: upload to bucket 'vidagent-media' cancelled"):
        publish(big, settings, cancel=cancel)
    assert sent.count("UploadPart") < 8 and "AbortMultipartUpload" in sent
    client = s3.client()
    assert client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    key = publishing.object_key(settings, hashlib.sha256(big.read_bytes()).hexdigest(), big)
    with pytest.raises(Exception) as missing:
        client.head_object(Bucket=BUCKET, Key=key)
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_nothing_is_world_readable(s3, settings):
    published = publish(SAMPLE, settings)
    client = s3.client()
    for grants in (client.get_object_acl(Bucket=BUCKET, Key=published.key)["Grants"],
                   client.get_bucket_acl(Bucket=BUCKET)["Grants"]):
        assert [g for g in grants if g["Grantee"].get("URI") in PUBLIC] == []
    plain = f"{s3.url}/{BUCKET}/{published.key}"  # the object's address, unsigned
    assert httpx.get(plain).status_code == 403
    assert httpx.get(published.url).status_code == 200


def test_the_presigned_url_reads_whole_and_by_range_and_says_when_it_expires(s3, settings):
    settings.object_store_url_ttl_s = 1
    before = time.time()
    published = publish(SAMPLE, settings)
    data = SAMPLE.read_bytes()
    assert httpx.get(published.url).content == data
    ranged = httpx.get(published.url, headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206 and ranged.content == data[100:200]
    assert ranged.headers["content-range"] == f"bytes 100-199/{len(data)}"

    url = urlsplit(published.url)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}" == s3.url  # the store's host, nowhere else
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and query["X-Amz-Expires"] == "1"
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
    assert before - 1 <= signed_at <= time.time()  # SigV4 signs date and lifetime: it dies at signed_at + 1
    assert abs(published.expires_at - (signed_at + 1)) < 2
    assert SECRET_KEY not in published.url


def test_pyav_opens_the_presigned_url_and_decodes_a_frame_after_a_seek(s3, settings, clips):
    """What a segment worker does: open the URL, seek to its segment, decode. The clip is
    ffmpeg's, 29.97 fps with a keyframe every 2 s and its index (moov) at the end, so FFmpeg
    must read it by byte ranges."""
    import av

    clip = clips("keyframes-2s.mp4", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30000/1001:duration=20",
                 "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-keyint_min", "60", "-pix_fmt", "yuv420p")
    published = publish(clip, settings)
    with av.open(published.url) as remote:
        stream = remote.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (640, 360)
        assert stream.average_rate == Fraction(30000, 1001)
        remote.seek(int(12.0 / stream.time_base), stream=stream)  # to the keyframe at or before 12 s
        frame = next(remote.decode(stream))
        assert frame.width == 640 and 10.0 - 0.05 <= float(frame.pts * stream.time_base) <= 12.0


def test_resolve_url_signs_s3_urls_and_passes_http_through(s3, settings):
    published = publish(SAMPLE, settings)
    url = resolve_url(f"s3://{BUCKET}/{published.key}", settings)
    assert httpx.get(url, headers={"Range": "bytes=0-9"}).content == SAMPLE.read_bytes()[:10]
    for plain in ("https://cdn.example.com/a.mp4?sig=1", "http://127.0.0.1:9/b.mov"):
        assert resolve_url(plain, settings) == plain
    with pytest.raises(StoreError, match=r"s3://vidagent-media/nope.mp4: no such object"):
        resolve_url(f"s3://{BUCKET}/nope.mp4", settings)
    with pytest.raises(ConfigError, match="ftp://x/y: not a URL vidagent can give a worker"):
        resolve_url("ftp://x/y", settings)
    with pytest.raises(ConfigError, match="needs a bucket and a key"):
        resolve_url("s3://only-bucket", settings)


def test_store_configured_and_the_settings_layers(tmp_path):
    assert not store_configured(Settings())
    from vidagent.config import load_settings

    config = tmp_path / "c.yaml"
    config.write_text("object_store_bucket: from-yaml\nobject_store_url_ttl_s: 60\n")
    env = {"VIDAGENT_OBJECT_STORE_BUCKET": "from-env", "VIDAGENT_OBJECT_STORE_SECRET_ACCESS_KEY": "s3cr3t"}
    loaded = load_settings(config, {"object_store_bucket": "from-flag"}, env)
    assert loaded.object_store_bucket == "from-flag" and loaded.object_store_url_ttl_s == 60
    assert store_configured(loaded)
    assert load_settings(config, {}, env).object_store_bucket == "from-env"
    assert "s3cr3t" not in repr(loaded) and "s3cr3t" not in loaded.model_dump_json()
    with pytest.raises(ConfigError, match="VIDAGENT_OBJECT_STORE_URL_TTL_S"):
        load_settings(None, {}, {"VIDAGENT_OBJECT_STORE_URL_TTL_S": "999999999"})


# -- failures: one line, the bucket and what to do, no secret ---------------------------------


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and SECRET_KEY not in text and "Traceback" not in text
    return text


def test_a_missing_bucket(settings):
    settings.object_store_bucket = "no-such-bucket-here"
    with pytest.raises(StoreError) as err:
        publish(SAMPLE, settings)
    assert "'no-such-bucket-here'" in one_line(err) and "no such bucket" in one_line(err)


def test_no_credentials_anywhere(s3):
    settings = Settings(object_store_bucket=BUCKET, object_store_endpoint_url=s3.url, object_store_region="us-east-1")
    with pytest.raises(StoreError) as err:
        publish(SAMPLE, settings)
    assert "no credentials" in one_line(err) and "VIDAGENT_OBJECT_STORE_ACCESS_KEY_ID" in one_line(err)
    with pytest.raises(StoreError, match="VIDAGENT_OBJECT_STORE_SECRET_ACCESS_KEY is not set"):
        publish(SAMPLE, Settings(object_store_bucket=BUCKET, object_store_access_key_id="AKIA1"))


def test_boto3s_own_chain_is_used_when_ours_is_unset(s3, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    settings = Settings(object_store_bucket=BUCKET, object_store_endpoint_url=s3.url, object_store_region="us-east-1",
                        object_store_prefix="t/chain")
    published = publish(SAMPLE, settings)
    assert f"X-Amz-Credential={ACCESS_KEY}" in published.url


def test_an_unreachable_endpoint():
    url = f"http://127.0.0.1:{free_port()}"
    settings = Settings(object_store_bucket=BUCKET, object_store_endpoint_url=url, object_store_region="us-east-1",
                        object_store_access_key_id=ACCESS_KEY, object_store_secret_access_key=SECRET_KEY)
    with pytest.raises(StoreError) as err:
        publish(SAMPLE, settings)
    assert "cannot reach the endpoint" in one_line(err) and url in one_line(err)


@pytest.fixture(scope="module")
def strict_s3():
    """moto with its IAM checks on (after the three set-up calls): signatures and policies
    are enforced, as on AWS."""
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "4"
    try:
        server = start_s3_server()
    finally:
        del os.environ["INITIAL_NO_AUTH_ACTION_COUNT"]
    import boto3

    iam = boto3.client("iam", endpoint_url=server.url, region_name="us-east-1",
                       aws_access_key_id="setup", aws_secret_access_key="setup")
    iam.create_user(UserName="reader")
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*",
                                                       "Action": ["s3:GetObject", "s3:ListBucket", "s3:CreateBucket"]}]}
    iam.put_user_policy(UserName="reader", PolicyName="read-only", PolicyDocument=json.dumps(policy))
    boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=key["AccessKeyId"],
                 aws_secret_access_key=key["SecretAccessKey"]).create_bucket(Bucket="strict-bucket")
    yield server, key
    server.close()


def test_access_denied_and_rejected_keys(strict_s3):
    server, key = strict_s3
    base = dict(object_store_bucket="strict-bucket", object_store_endpoint_url=server.url,
                object_store_region="us-east-1", object_store_access_key_id=key["AccessKeyId"])
    with pytest.raises(StoreError) as err:  # may read, may not write
        publish(SAMPLE, Settings(**base, object_store_secret_access_key=key["SecretAccessKey"]))
    assert "'strict-bucket'" in one_line(err) and "access denied" in one_line(err) and "s3:PutObject" in one_line(err)
    with pytest.raises(StoreError) as err:
        publish(SAMPLE, Settings(**base, object_store_secret_access_key=SECRET_KEY))
    assert "rejected the credentials (SignatureDoesNotMatch)" in one_line(err)


def test_runpods_s3_api_hands_workers_the_volume_path(s3, settings, monkeypatch):
    """RunPod's S3 API has no presigned URLs (docs.runpod.io storage/s3-api): the segment
    endpoint mounts the volume, where s3://VOLUME_ID/key is /runpod-volume/key."""
    monkeypatch.setattr(store_client, "is_runpod_volume", lambda s: True)
    monkeypatch.setattr(publishing, "is_runpod_volume", lambda s: True)
    published = publish(SAMPLE, settings)
    assert published.url == f"/runpod-volume/{published.key}" and published.expires_at is None
    assert store_client.RUNPOD_S3_HOST.match("https://s3api-eu-ro-1.runpod.io/")
    assert not store_client.RUNPOD_S3_HOST.match("https://s3api-eu-ro-1.runpod.io.evil.example/")


def test_doctor_says_where_the_keys_come_from_and_never_what_they_are(monkeypatch):
    from vidagent.storage.client import describe_store

    assert describe_store(Settings())[0] is True and "not configured" in describe_store(Settings())[1]
    ours = Settings(object_store_bucket="b1", object_store_access_key_id=ACCESS_KEY, object_store_secret_access_key=SECRET_KEY)
    ok, text = describe_store(ours)
    assert ok and "VIDAGENT_OBJECT_STORE_ACCESS_KEY_ID" in text and SECRET_KEY not in text and ACCESS_KEY not in text
    assert describe_store(Settings(object_store_bucket="b1", object_store_secret_access_key=SECRET_KEY))[0] is False
    monkeypatch.setenv("AWS_PROFILE", "team")
    assert "AWS_PROFILE" in describe_store(Settings(object_store_bucket="b1"))[1]
    runpod = Settings(object_store_bucket="vol1", object_store_endpoint_url="https://s3api-eu-ro-1.runpod.io/")
    assert "/runpod-volume" in describe_store(runpod)[1]
