"""The sizes of the renditions and how a preview is made from an image's size; no imaging library.

Its own module so that the server's process (`dashboard.previews` asks which images get their preview
after publishing) knows the rule without loading Pillow, which loads only in decoder workers.
"""

from __future__ import annotations

THUMB_EDGE_PX = 480  # a thumbnail's long edge
#: Previews: the image halved until its long edge is at most PREVIEW_MAX_EDGE_PX; if that leaves it
#: under PREVIEW_MIN_EDGE_PX, the image halved once less is scaled to PREVIEW_EDGE_PX (`preview_plan`).
PREVIEW_MIN_EDGE_PX = 1600
PREVIEW_MAX_EDGE_PX = 2400
PREVIEW_EDGE_PX = 2048


def preview_plan(width: int, height: int) -> tuple[int, int | None]:
    """How a preview is made from a `width`×`height` image: (halvings, long edge to resize to or None).

    Halving is free while decoding a JPEG (DCT scaling) and cheap otherwise (`Image.reduce`), so
    an image is halved until its long edge is at most `PREVIEW_MAX_EDGE_PX`; if that lands at or
    above `PREVIEW_MIN_EDGE_PX` it is the preview as it is, without resampling (4000 px → 2000).
    Otherwise the last halving would go too small, so the image halved one time fewer is scaled
    to `PREVIEW_EDGE_PX` (6000 px → 3000 → 2048).
    """
    edge = max(width, height)
    halvings = 0
    while edge / 2**halvings > PREVIEW_MAX_EDGE_PX:
        halvings += 1
    if halvings == 0 or edge / 2**halvings >= PREVIEW_MIN_EDGE_PX:
        return halvings, None
    return halvings - 1, PREVIEW_EDGE_PX
