"""`cost-estimate --workers N`: the segment path next to the single-client path. The tests
hold the model to how a fleet behaves (more workers: sooner done, more cold starts; a URL
input uploads nothing; an audio file decodes no pictures), not to its arithmetic."""

from __future__ import annotations

import json

import pytest

from test_cost import PRICES, PROFILE, invoke, no_dotenv  # noqa: F401  (no_dotenv: autouse fixture)
from vidagent.config import Settings
from vidagent.cost import MediaFacts, fleet_estimate, load_prices, load_profile, parse_prices, parse_profile

SEGMENT = """
segment: {client_pixels_per_s: 7.0e+8, client_audio_x: 600, worker_pixels_per_s: 2.8e+9, worker_audio_x: 2400,
          hash_bytes_per_s: 5.0e+8, presign_s: 0.001, probe_s: 1.0, queue_s: 0.5, seconds_per_segment: 0.5,
          cold_start_s: 30, idle_s: 10, detect_jpeg_bytes: 56000, audio_bytes_per_s: 42667,
          assumed_bitrate_bps: 8.0e+6, assumed_width: 1920, assumed_height: 1080,
          provenance: measured, source: "a test bench", date: "2026-12-01"}
"""


@pytest.fixture(scope="module")
def tables():
    return parse_prices(PRICES, "p.yaml"), parse_profile(PROFILE + SEGMENT, "t.yaml")


def hour(**facts) -> MediaFacts:
    return MediaFacts(**{"name": "hour.mp4", "duration_s": 3600.0, "fps": 29.97, "has_audio": True,
                         "width": 1920, "height": 1080, "size_bytes": 3_600_000_000, **facts})


def fleet(tables, workers, video=None, settings=None, **options):
    prices, profile = tables
    return fleet_estimate([video or hour()], settings or Settings(), prices, profile, workers, **options)


def test_more_workers_finish_sooner_and_start_more_cold(tables):
    runs = [fleet(tables, n, uploaded_already=True) for n in (1, 2, 4, 8, 16, 60)]
    walls = [r.segment.wall_s for r in runs]
    colds = [r.segment.cold_starts for r in runs]
    assert walls == sorted(walls, reverse=True) and walls[-1] < walls[0] / 10
    assert colds == sorted(colds) and colds[-1] > colds[0]
    bills = [r.segment.billed_s for r in runs]
    assert bills[-1] > bills[0]  # the same work, more workers to start: it costs more
    # The work itself does not depend on the fleet: only how it is spread.
    assert max(r.segment.worker_s for r in runs) - min(r.segment.worker_s for r in runs) < 0.05 * runs[0].segment.worker_s


def test_segments_follow_the_fleet_unless_their_length_is_given(tables):
    assert fleet(tables, 60).work.segments == 60
    assert fleet(tables, 60).work.waves == 1
    given = fleet(tables, 60, segment_seconds=300)
    assert given.work.segments == 12 and given.segment.cold_starts == 12  # never more workers than segments
    assert fleet(tables, 4, segment_seconds=300).work.waves == 3


def test_the_segment_path_uploads_the_file_once_or_nothing_for_a_url(tables):
    local = fleet(tables, 60)
    assert local.segment.uploaded_bytes == hour().size_bytes
    url = fleet(tables, 60, uploaded_already=True)
    assert url.segment.uploaded_bytes == 0 and url.segment.wall_s < local.segment.wall_s
    assert url.segment.client_cpu_s < local.segment.client_cpu_s  # nothing to hash
    # Today's path decodes on the client: far more client CPU than probing and planning.
    assert url.single.client_cpu_s > 50 * url.segment.client_cpu_s


def test_a_slower_uplink_slows_both_paths_that_upload(tables):
    fast, slow = fleet(tables, 60, uplink_mbps=1000), fleet(tables, 60, uplink_mbps=10)
    assert slow.segment.wall_s > fast.segment.wall_s and slow.single.wall_s >= fast.single.wall_s
    assert slow.segment.upload_s == pytest.approx(100 * fast.segment.upload_s)
    url_fast = fleet(tables, 60, uplink_mbps=1000, uploaded_already=True)
    url_slow = fleet(tables, 60, uplink_mbps=10, uploaded_already=True)
    assert url_slow.segment.wall_s == url_fast.segment.wall_s  # nothing went up either way


def test_an_audio_file_decodes_no_pictures_and_sends_what_the_no_detect_video_sends(tables):
    audio = fleet(tables, 8, video=hour(name="talk.m4a", has_video=False, fps=None, width=None, height=None))
    video = fleet(tables, 8)
    assert audio.work.decode_s < video.work.decode_s / 10
    assert audio.work.inference_s < video.work.inference_s
    no_detect = fleet(tables, 8, settings=Settings(detect=False))
    assert audio.single.uploaded_bytes == no_detect.single.uploaded_bytes > 0  # the audio, nothing else
    assert audio.single.client_cpu_s < video.single.client_cpu_s / 10


def test_the_verdicts_follow_the_figures(tables):
    for workers in (1, 4, 60):
        for uploaded in (False, True):
            result = fleet(tables, workers, uploaded_already=uploaded)
            segment, single = result.segment, result.single
            if result.faster != "same":
                assert (result.faster == "segment") == (segment.wall_s < single.wall_s)
            if result.cheaper != "same":
                assert (result.cheaper == "segment") == (segment.usd_flex < single.usd_flex)
    assert fleet(tables, 60, uploaded_already=True).faster == "segment"


def test_the_figures_say_where_they_come_from(tables):
    result = fleet(tables, 4)
    assert result.figures["segment"].startswith("measured 2026-12-01: a test bench")
    # A profile without the section (an older measured one) takes the shipped figures, and says so.
    prices, profile = tables
    bare = parse_profile(PROFILE, "old.yaml")
    shipped = load_profile().segment
    assert "docs/benchmarks.md" in fleet_estimate([hour()], Settings(), prices, bare, 4).figures["segment"]
    assert shipped.provenance in ("published", "measured") and shipped.basis


def test_the_shipped_tables_price_the_segment_worker():
    prices, profile = load_prices(), load_profile()
    assert prices.pool_name("segment") in prices.pools
    result = fleet_estimate([MediaFacts.assumed(3600)], Settings(), prices, profile, 60, uploaded_already=True)
    assert result.faster == "segment" and result.pool == prices.pool_name("segment")


# -- the command ------------------------------------------------------------------------------


def test_the_command_prints_both_paths_and_the_verdicts():
    result = invoke("--duration", "1h", "--workers", "60", "--uploaded")
    assert result.exit_code == 0, result.output
    for text in ("Segment path on 60 worker(s)", "single client", "Faster: the segment path", "Cheaper:",
                 "client CPU s", "--uploaded"):
        assert text in result.output


def test_the_json_carries_the_fleet_and_more_workers_are_faster_there_too(sample):
    few = json.loads(invoke(sample, "--workers", "1", "--segment-seconds", "2", "--json").output)
    many = json.loads(invoke(sample, "--workers", "4", "--segment-seconds", "2", "--json").output)
    assert few["fleet"]["work"]["segments"] == many["fleet"]["work"]["segments"] == 5  # 10 s in 2 s segments
    assert many["fleet"]["segment"]["wall_s"] < few["fleet"]["segment"]["wall_s"]
    assert few["fleet"]["segment"]["uploaded_bytes"] == sample.stat().st_size
    assert "fleet" not in json.loads(invoke(sample, "--json").output)


def test_fleet_options_without_workers_are_a_usage_error():
    from vidagent.errors import ConfigError

    result = invoke("--duration", "1h", "--segment-seconds", "30")
    assert isinstance(result.exception, ConfigError) and "give --workers N" in str(result.exception)
    assert result.exception.exit_code == 2


def test_a_batch_shares_the_fleet_and_uploads_each_file_once(tables):
    prices, profile = tables
    one = fleet_estimate([hour()], Settings(), prices, profile, 60)
    two = fleet_estimate([hour(), hour(name="b.mp4")], Settings(), prices, profile, 60)
    assert two.work.segments == 2 * one.work.segments and two.work.waves == 2 * one.work.waves
    assert two.segment.uploaded_bytes == 2 * one.segment.uploaded_bytes
    assert two.segment.cold_starts == one.segment.cold_starts  # the same 60 workers, started once
    assert two.segment.wall_s > one.segment.wall_s


def test_speakers_add_the_same_diarization_seconds_to_both_paths(tables):
    prices, profile = tables
    profile = profile.model_copy(update={"whisper": profile.whisper.model_copy(update={"diarize_seconds_per_unit": 0.01})})
    runs = {on: fleet_estimate([hour()], Settings(speakers=on), prices, profile, 4, uploaded_already=True)
            for on in (False, True)}
    added_segment = runs[True].segment.worker_s - runs[False].segment.worker_s
    added_single = runs[True].single.worker_s - runs[False].single.worker_s
    assert added_segment > 0  # the segment workers diarize their stretches
    assert added_segment == pytest.approx(added_single, rel=0.01)  # the same audio, the same encoder
