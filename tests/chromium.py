"""Headless Chromium checks for the HTML reports: layout measured by the browser itself.

The report is copied with a small script appended (the report itself has none) that measures
every SVG chart's text labels and the page width, and writes the result as JSON into the DOM;
``--dump-dom`` returns it. Nothing here is a stand-in: Chromium lays the page out.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = (
    shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium); CI installs it"
)

_PROBE = """<script>
(function () {
  const out = {charts: [], scrollWidth: document.documentElement.scrollWidth,
               clientWidth: document.documentElement.clientWidth, tables: document.querySelectorAll('table').length};
  document.querySelectorAll('svg').forEach(function (svg) {
    const texts = Array.from(svg.querySelectorAll('text')).map(function (t) {
      const b = t.getBBox();
      return {text: t.textContent, x: b.x, y: b.y, w: b.width, h: b.height};
    });
    const overlaps = [];
    for (let i = 0; i < texts.length; i++) for (let j = i + 1; j < texts.length; j++) {
      const a = texts[i], c = texts[j];
      if (a.x < c.x + c.w - 0.5 && c.x < a.x + a.w - 0.5 && a.y < c.y + c.h - 0.5 && c.y < a.y + a.h - 0.5)
        overlaps.push([a.text, c.text]);
    }
    const rects = Array.from(svg.querySelectorAll('rect')).slice(1).map(function (r) {
      return {h: r.getBBox().height, w: r.getBBox().width, title: (r.querySelector('title') || {}).textContent || ''};
    });
    const vb = svg.viewBox.baseVal;
    const outside = texts.filter(function (t) { return t.x < -0.5 || t.x + t.w > vb.width + 0.5; }).map(function (t) { return t.text; });
    out.charts.push({title: (svg.querySelector('title') || {}).textContent || '', overlaps: overlaps, outside: outside, rects: rects,
                     labels: texts.map(function (t) { return t.text; })});
  });
  const pre = document.createElement('pre');
  pre.id = 'layout-probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


def layout(html: str, tmp_path: Path, width: int = 1240) -> dict[str, Any]:
    """Lay ``html`` out in headless Chromium and return what the probe measured."""
    assert CHROMIUM is not None
    page = tmp_path / "probe.html"
    page.write_text(html.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         f"--window-size={width},1000", "--virtual-time-budget=3000", "--dump-dom", page.as_uri()],
        check=True, capture_output=True, timeout=90, text=True,
    )  # fmt: skip
    m = re.search(r'<pre id="layout-probe">(.*?)</pre>', done.stdout, re.S)
    assert m, done.stdout[-2000:]
    text = (
        m.group(1)
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
        .replace("&amp;", "&")
    )
    result: dict[str, Any] = json.loads(text)
    return result
