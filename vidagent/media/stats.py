"""What one extraction pass saw, filled in as it runs and read by the pipeline for warnings."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ExtractStats:
    """What the pass saw; filled in as it runs, read by the pipeline for warnings."""

    decoded_frames: int = 0
    skipped_frames: int = 0  # dropped undecoded: picked by no FrameSpec, referenced by no frame
    last_video_t: float = 0.0
    damaged_packets: int = 0
    warnings: list[str] = field(default_factory=list)
