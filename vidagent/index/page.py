"""`vidagent search --html FILE`: one page of moments with thumbnails and links that play them.

Links are relative to the page, so the page and the videos can move together. Each
moment links to its source video with a media fragment (`video.mp4#t=12.0,15.5`, which
browsers open at that time) and to its report page at that time (`report.html#t=12.0`);
clicking a thumbnail or the link plays the moment in the page's player (the report
page's: its keys, its clock offset; a report's proxy when it has one), and
`page.html#play=N` plays moment N on load.
"""

from __future__ import annotations

import base64
from pathlib import Path

from .. import __version__
from ..report.events import span
from ..timefmt import short_clock
from ..media.probe import MediaInfo
from ..media.proxy import PROXY_EXTENSIONS
from ..report.player import PageMedia, media_href
from . import Hit, Video
from .frames import Pictures, source_of

INSTANT_S = 3.0


def render_page(hits: list[Hit], title: str, filters: str, index: str, page: Path, pictures: Pictures) -> str:
    from ..report.html import template

    rows = [_row(hit, page.parent, pictures) for hit in hits]
    data = [{"name": r["name"], "span": r["span"], "src": r["play"].src, "offset": r["play"].offset,
             "kind": r["play"].kind, "start": r["start"], "end": r["end"]} for r in rows]
    return template("search.html.j2").render(
        title=title, filters=filters, index=index, hits=rows, notes=pictures.notes, data=data, version=__version__,
        instant_s=INSTANT_S,
    )


def _row(hit: Hit, folder: Path, pictures: Pictures) -> dict:
    m = hit.moment
    picture = pictures.get(hit.video, m.at)
    source = source_of(hit.video)
    report_page = Path(hit.video.report_path).with_name("report.html")
    play = _playable(hit.video, source, report_page.parent, folder)
    return {
        "play": play,
        "name": hit.video.name, "kind": m.kind, "label": m.label, "start": m.start, "end": m.end,
        "span": span(m.start, m.end) if m.end > m.start else short_clock(m.start), "at_clock": short_clock(m.at),
        "pieces": _pieces(m.text, hit.highlights),
        "thumb": "data:image/jpeg;base64," + base64.b64encode(picture[0]).decode("ascii") if picture else None,
        "thumb_note": "no picture: source video not found" if source is None else "no picture",
        "video_href": f"{play.src}#t={m.start + play.offset:.2f},{_play_until(m) + play.offset:.2f}" if play.src else None,
        "report_href": f"{media_href(report_page, folder)}#t={m.at:.2f}" if report_page.is_file() else None,
    }


def _playable(video: Video, source: Path | None, report_folder: Path, folder: Path) -> PageMedia:
    """What the page's player plays for a hit: the proxy beside its report when one was
    written (the source may be a codec browsers cannot play), else the source."""
    media = MediaInfo.model_validate(video.media)
    kind = "video" if media.has_video else "audio"
    for proxy in (report_folder / ("media.proxy" + ext) for ext in PROXY_EXTENSIONS):
        if proxy.is_file():
            return PageMedia(media_href(proxy, folder), kind)
    if source is None:
        return PageMedia(None, kind)
    return PageMedia(media_href(source, folder), kind, media.start_time_s)


def _play_until(m) -> float:
    """A span plays as it is; an instant (a caption, a frame) plays for INSTANT_S."""
    return m.end if m.end > m.start else m.start + INSTANT_S


def _pieces(text: str, highlights: list[tuple[int, int]]) -> list[tuple[str, bool]]:
    pieces, last = [], 0
    for start, end in sorted(highlights):
        if start > last:
            pieces.append((text[last:start], False))
        pieces.append((text[max(start, last):end], True))
        last = max(last, end)
    pieces.append((text[last:], False))
    return [p for p in pieces if p[0]]


