"""What the segment path costs the client per video: hashing the file (the upload's key,
vidagent.cache.content_hash) against coreutils' sha256sum as the floor, and signing one
segment's presigned URL with boto3 (no network: SigV4 signing is local).

    .venv/bin/python scripts/bench_client_costs.py --mb 512 --urls 2000

The figures feed configs/profile.yaml's `segment` section (hash_bytes_per_s, presign_s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def best_of(repeat: int, run) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=512, help="size of the file hashed, MB")
    parser.add_argument("--urls", type=int, default=2000, help="presigned URLs signed")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many rounds")
    args = parser.parse_args()

    from vidagent import cache

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "media.bin"
        with path.open("wb") as out:
            for _ in range(args.mb):
                out.write(os.urandom(1 << 20))

        def ours():
            cache._content_hashes.clear()  # the memo would answer at once
            cache.content_hash(path)

        ours()  # page cache warm for both
        mine = best_of(args.repeat, ours)
        size = path.stat().st_size
        print(f"content_hash: {size / mine / 1e6:,.0f} MB/s ({mine:.3f} s for {args.mb} MB)")
        if shutil.which("sha256sum"):
            floor = best_of(args.repeat, lambda: subprocess.run(["sha256sum", str(path)], check=True,
                                                                 stdout=subprocess.DEVNULL))
            print(f"sha256sum (floor): {size / floor / 1e6:,.0f} MB/s; content_hash / floor = {mine / floor:.2f}")

    import boto3
    from botocore.config import Config

    client = boto3.client("s3", endpoint_url="https://s3.example.invalid", region_name="us-east-1",
                          aws_access_key_id="AKIABENCH", aws_secret_access_key="bench-secret",
                          config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))

    def sign():
        for i in range(args.urls):
            client.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": f"media/{i}.mp4"}, ExpiresIn=3600)

    signing = best_of(args.repeat, sign)
    print(f"presign: {signing / args.urls * 1e3:.3f} ms per URL ({args.urls} in {signing:.3f} s)")


if __name__ == "__main__":
    main()
