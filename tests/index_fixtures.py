"""Fixture reports with known answers, for the index, search and ask tests.

Three videos; what each query must find is written beside the data, so the tests assert
against this story, not against what the code returns.

harbour.mp4 (120 s)
  10-14 speech "The lighthouse keeper opened the door." (word times: "lighthouse" at 10.8)
  20-24 speech "We signed the contract this morning."
  40-45 speech "The lights went out in the harbour."
  50-55 speech "Everyone waited in the dark."
  30    caption "A forklift drives past a person near the dock" (actions, visible text EXIT 3)
  46    caption "A dark room with a few people"
  people in frame: 1 from 0 to 29.5, 3 from 30 to 40, none after; a forklift from 28 to 35
office.mp4 (90 s)
   5-9  speech "Please review the contract before Friday."
  12-16 speech "The contract has a penalty clause. Contract terms matter."
   3    caption "Two people at a desk with papers"
  people in frame: 2 from 0 to 20
street.mp4 (60 s)
   8-12 speech "A forklift is parked by the road."
  cars in frame: 1 from 0 to 60
"""

from __future__ import annotations

from pathlib import Path

from vidagent.report.events import build_events
from vidagent.report.model import Caption, DetectedObject, FrameDetections, Report, Segment, Transcript, Word
from vidagent.report.tracks import build_tracks, count_objects

BOX = {"person": [10, 10, 50, 120], "forklift": [100, 40, 200, 140], "car": [200, 100, 300, 160]}


def media(path: Path, duration: float) -> dict:
    return {"path": str(path), "file_name": path.name, "size_bytes": 1000, "container": "mp4",
            "duration_s": duration, "width": 320, "height": 240, "coded_width": 320, "coded_height": 240,
            "fps": 25.0, "video_codec": "h264", "has_audio": True}


def report(path: Path, duration: float, segments=(), captions=(), objects=None, summary_sentences=()) -> Report:
    """`objects(t) -> {label: count}` gives each detection frame (every 0.5 s) its objects."""
    detections = []
    if objects is not None:
        t = 0.0
        while t <= duration:
            found = []
            for label, n in objects(t).items():
                x1, y1, x2, y2 = BOX[label]
                found += [DetectedObject(label=label, class_id=0, confidence=0.9,
                                         box=[x1 + 60 * i, y1, x2 + 60 * i, y2]) for i in range(n)]
            detections.append(FrameDetections(t=t, objects=found))
            t = round(t + 0.5, 3)
    tracks = build_tracks(detections)
    transcript = Transcript(language="en", segments=[s if isinstance(s, Segment) else Segment(start=s[0], end=s[1], text=s[2])
                                                     for s in segments])
    caption_list = [c if isinstance(c, Caption) else Caption(t=c[0], reason="scene", text=c[1], structured=False)
                    for c in captions]
    return Report(
        vidagent_version="test", created_at="2026-12-01T00:00:00+00:00", media=media(path, duration),
        settings={"detect_fps": 2.0}, detections=detections, transcript=transcript, captions=caption_list,
        tracks=tracks, events=build_events(tracks, transcript, caption_list), object_counts=count_objects(tracks),
        summary_sentences=list(summary_sentences),
        summary=" ".join(s["text"] for s in summary_sentences) or None,
    )


def harbour(folder: Path) -> Report:
    lighthouse = Segment(start=10.0, end=14.0, text=" The lighthouse keeper opened the door.", words=[
        Word(word=" The", start=10.0, end=10.4), Word(word=" lighthouse", start=10.8, end=11.5),
        Word(word=" keeper", start=11.6, end=12.0), Word(word=" opened", start=12.1, end=12.6),
        Word(word=" the", start=12.7, end=12.9), Word(word=" door.", start=13.0, end=14.0)])
    forklift = Caption(t=30.0, reason="trigger:forklift", text="A forklift drives past a person near the dock",
                       people_count=1, actions=["driving"], visible_text=["EXIT 3"], structured=True)

    def objects(t):
        found = {}
        if t < 30:
            found["person"] = 1
        elif t <= 40:
            found["person"] = 3
        if 28 <= t <= 35:
            found["forklift"] = 1
        return found

    return report(folder / "harbour.mp4", 120.0, segments=[
        lighthouse, (20.0, 24.0, "We signed the contract this morning."),
        (40.0, 45.0, "The lights went out in the harbour."), (50.0, 55.0, "Everyone waited in the dark."),
    ], captions=[forklift, (46.0, "A dark room with a few people")], objects=objects)


def office(folder: Path) -> Report:
    return report(folder / "office.mp4", 90.0, segments=[
        (5.0, 9.0, "Please review the contract before Friday."),
        (12.0, 16.0, "The contract has a penalty clause. Contract terms matter."),
    ], captions=[(3.0, "Two people at a desk with papers")], objects=lambda t: {"person": 2} if t <= 20 else {})


def street(folder: Path) -> Report:
    return report(folder / "street.mp4", 60.0, segments=[(8.0, 12.0, "A forklift is parked by the road.")],
                  objects=lambda t: {"car": 1})


def write_reports(folder: Path) -> dict[str, Path]:
    """The three reports as DIR/<name>/report.json, like `vidagent analyze --out DIR`."""
    paths = {}
    for make in (harbour, office, street):
        made = make(folder)
        target = folder / Path(made.media.file_name).stem / "report.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(made.model_dump_json(indent=2))
        paths[target.parent.name] = target
    return paths
