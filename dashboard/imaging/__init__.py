"""Turning a file's bytes into what Fotoflo stores about an image; nothing here knows of stores or servers.

Light modules (no Pillow, no rawpy; the watcher, the config and the sync client import only these):
`errors` (the refusals, `Limits`), `formats` (accepted formats, file name suffixes, MIME types),
`analysis` (what a decode yields). Heavy ones, imported where decoding happens (the decoder worker
processes, `samples`): `decode` (`analyze`, the one decode), `renditions` (preview and thumbnail),
`exif`, `raw` (camera RAW by its embedded JPEG) and `raw_walk` (the RAW container walk it uses).
This package's `__init__` imports nothing, so importing a light module loads no heavy one.
"""
