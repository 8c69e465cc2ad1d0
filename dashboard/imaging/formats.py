"""What Fotoflo accepts: image formats (decided by content), their MIME types and file name suffixes.

Light: no imaging library is imported. The suffixes only say which files bulk import, the hot folder
and the sync client offer to ingest; the decode (`dashboard.imaging.decode`) decides by content.
"""

from __future__ import annotations

#: Formats decided by content; anything else is refused, whatever its name says.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "HEIF", "GIF")
#: Camera RAW kind → MIME type; the kinds are also the format names the ingest stores (`dashboard.imaging.raw`).
MIME_BY_KIND = {
    "DNG": "image/x-adobe-dng",
    "CR2": "image/x-canon-cr2",
    "CR3": "image/x-canon-cr3",
    "NEF": "image/x-nikon-nef",
    "ARW": "image/x-sony-arw",
    "PEF": "image/x-pentax-pef",
    "ORF": "image/x-olympus-orf",
    "RW2": "image/x-panasonic-rw2",
    "RAF": "image/x-fuji-raf",
}
MIME_BY_FORMAT = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "HEIF": "image/heif",
    "GIF": "image/gif",
    **MIME_BY_KIND,  # camera RAW files, shown by the JPEG preview they embed
}
#: File name suffixes of the RAW kinds above.
RAW_SUFFIXES = frozenset({".dng", ".cr2", ".cr3", ".nef", ".nrw", ".arw", ".pef", ".orf", ".rw2", ".raf"})
#: File name suffixes of every accepted format: what bulk import and the sync client offer to ingest
#: (ingest itself still decides by content).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".heic", ".heif", ".gif"}) | RAW_SUFFIXES
