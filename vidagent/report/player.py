"""What the report page plays: the source by a relative link, a proxy written beside the
page, or nothing (the `html_video` setting: source, proxy, none).

A relative link keeps working when the page's folder and the video move together. It is
computed on the paths as given (symlinks not resolved), because a browser resolves `../`
against the page's address, not against where a symlink points. When no relative path
exists (Windows: another drive), the page links the file's absolute file:// address, and
says that moving it breaks the player.
Browsers play the file on its own clock: a file whose first frame is at 5.0 s has
`currentTime` 5.0 there (Chromium, measured), so the page is given that offset; a proxy
starts at zero.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..errors import MediaError
from ..media.probe import MediaInfo

HTML_VIDEO_MODES = ("source", "proxy", "none")
# Codecs and containers that Chrome, Firefox and Safari all play (PyAV's names).
PLAYABLE_VIDEO = {"h264", "vp8", "vp9", "av1"}
PLAYABLE_AUDIO = {"aac", "mp3", "opus", "vorbis", "flac", "pcm_s16le", "pcm_u8", "pcm_f32le", "pcm_s24le"}
PLAYABLE_CONTAINERS = ("mov,mp4", "matroska", "webm", "ogg", "mp3", "wav", "flac", "aac")
NOT_EVERYWHERE = {"hevc": "HEVC plays in Safari and Edge but not in Firefox or most Chromium builds"}


@dataclass
class PageMedia:
    """The player's source for the page: `src` (a URL relative to the page), `kind`
    (video or audio), `offset` (the file's time at report time zero), `note` (shown by
    the player when there is something to say)."""

    src: str | None
    kind: str
    offset: float = 0.0
    note: str | None = None

    def as_data(self) -> dict:
        return {"src": self.src, "kind": self.kind, "offset": self.offset, "note": self.note}


def media_href(target: Path, folder: Path) -> str:
    """`target` as a URL relative to `folder` (percent-encoded), else its file:// URI."""
    target, folder = Path(os.path.abspath(target)), Path(os.path.abspath(folder))
    try:
        relative = os.path.relpath(target, folder)
    except ValueError:  # Windows: no relative path between two drives
        return target.as_uri()
    return quote(Path(relative).as_posix())


def playback_problem(media: MediaInfo) -> str | None:
    """Why browsers may not play this file (None: they all do)."""
    container = media.container or ""
    if media.has_video and media.video_codec not in PLAYABLE_VIDEO:
        return NOT_EVERYWHERE.get(media.video_codec or "") or f"browsers cannot play {media.video_codec} video"
    if not any(container.startswith(c) for c in PLAYABLE_CONTAINERS):
        return f"browsers cannot open {container.split(',')[0] or 'this'} files"
    codecs = [a.codec for a in media.audio_streams if a.default] or [a.codec for a in media.audio_streams[:1]]
    if codecs and codecs[0] not in PLAYABLE_AUDIO:
        return f"browsers cannot play {codecs[0]} audio"
    return None


def proxy_advice(media: MediaInfo) -> str | None:
    """The one-line warning for a source the page links but browsers may not play."""
    problem = playback_problem(media)
    if problem is None:
        return None
    return (f"{media.file_name}: {problem}, so the report page's player may stay blank; "
            "write a small copy that plays everywhere with --html-video proxy")


def page_media(media: MediaInfo, source: Path | None, folder: Path, mode: str, audio_index: int | None = None) -> PageMedia:
    """What the page at `folder`/report.html plays; `mode` proxy encodes the copy now
    (kept when it is newer than the source)."""
    kind = "video" if media.has_video else "audio"
    if mode == "none":
        return PageMedia(None, kind)
    if source is None:
        return PageMedia(None, kind, note=f"Source not found ({media.path}): no player. Re-render with --video PATH.")
    if mode == "proxy":
        from ..media.proxy import proxy_path, write_proxy

        try:
            proxy = proxy_path(folder, media.has_video)
            if not (proxy.is_file() and proxy.stat().st_mtime >= source.stat().st_mtime):
                folder.mkdir(parents=True, exist_ok=True)
                write_proxy(source, media, proxy, audio_index)
            return PageMedia(media_href(proxy, folder), kind)
        except MediaError as exc:  # the proxy is lost, never the page: it links the source instead
            failed = f"No proxy ({exc}); the player links the source."
            played = page_media(media, source, folder, "source")
            played.note = " ".join(filter(None, [failed, played.note]))
            return played
    href = media_href(source, folder)
    note = proxy_advice(media)
    if href.startswith("file:"):
        note = " ".join(filter(None, [note, "The video is on another drive: the page links it by its full path, "
                                               "so moving the page and the video together breaks the player."]))
    return PageMedia(href, kind, media.start_time_s, note)
