"""The painted first page (dashboard/first_paint.py) without a browser: escaping, and Panel's scripts kept."""

from __future__ import annotations

import json
import re

from dashboard.first_paint import FIRST_PAGE_ID, _boot, first_paint_html

HOSTILE = '"><script>alert(1)</script><!--<script>&amp;\u2028.jpg'


def page_of(*names: str) -> dict[str, object]:
    images = [
        {"id": f"id{n}", "filename": name, "thumbnail_url": f'/files/id{n}/thumb?exp=1&sig=a"b', "rating": 2}
        for n, name in enumerate(names)
    ]
    return {"images": images, "next": None, "last_seq": 7, "total": len(images)}


def test_names_are_text_and_the_json_cannot_end_its_block() -> None:
    out = first_paint_html('pro"ject<b>', page_of(HOSTILE, "plain.jpg"), 60)
    assert "<script>alert" not in out and "<b>" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert 'src="/files/id0/thumb?exp=1&amp;sig=a&quot;b"' in out
    block = re.search(rf'<script type="application/json" id="{FIRST_PAGE_ID}">(.*?)</script>', out, re.DOTALL)
    assert block is not None
    assert "<" not in block.group(1) and "\u2028" not in block.group(1)
    adopted = json.loads(block.group(1))
    assert adopted["query"] == "limit=60" and adopted["project"] == 'pro"ject<b>'
    assert [i["filename"] for i in adopted["page"]["images"]] == [HOSTILE, "plain.jpg"]
    assert out.count("data-first-id=") == 2


def test_panel_s_scripts_run_in_order_after_the_paint_and_unknown_ones_are_left_alone() -> None:
    bokeh_js = (
        '<script type="esms-options">{"shimMode": true}</script>\n'
        '<script type="text/javascript" src="static/js/bokeh.min.js?v=1&amp;x=2"></script>\n'
        '<script type="text/javascript">\n  Bokeh.set_log_level("info");\n</script>'
    )
    plot = '<script type="application/json" id="p1">{}</script><script>embed();</script>'
    out = str(_boot(bokeh_js, plot))
    steps = json.loads(re.search(r'id="ff-boot">(.*?)</script>', out, re.DOTALL).group(1))  # type: ignore[union-attr]
    assert steps == [
        ["src", "static/js/bokeh.min.js?v=1&x=2"],
        ["code", '\n  Bokeh.set_log_level("info");\n'],
        ["code", "embed();"],
    ]
    assert '<script type="esms-options">' in out and '<script type="application/json" id="p1">{}</script>' in out
    unknown = '<script type="module" src="x.js"></script>'
    assert str(_boot(bokeh_js + unknown, plot)) == bokeh_js + unknown + plot
