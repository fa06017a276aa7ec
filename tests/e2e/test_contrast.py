"""In a real browser, colours as drawn: the dashboard's text stands out from what is behind it by
4.5:1 at least (3:1 for large text), and the bars of its expiry chart by 3:1 (WCAG 2.1 AA)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import login

pytestmark = pytest.mark.e2e

# Colours as drawn: parse a computed colour, its relative luminance, and the colour behind an
# element (the first opaque background of it or its ancestors, translucent ones laid over it).
COLOURS = """
  const parse = c => {
    const p = c.match(/[\\d.]+/g).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const lum = c => {
    const a = c.slice(0, 3).map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * a[0] + 0.7152 * a[1] + 0.0722 * a[2];
  };
  const ratio = (a, b) => {
    const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const behind = el => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let rgb = [255, 255, 255];
    for (const c of layers.reverse()) rgb = rgb.map((v, k) => c[k] * c[3] + v * (1 - c[3]));
    return rgb;
  };
"""

# For each element of the selector with text of its own (or an SVG shape): the contrast of its
# colour (an SVG element's fill) with the colour behind it.
CONTRASTS = (
    "(selector) => {"
    + COLOURS
    + """
  const own = el => [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
  return [...document.querySelectorAll(selector)]
    .filter(el => el instanceof SVGGeometryElement || own(el))
    .map(el => {
      const s = getComputedStyle(el);
      const svg = el instanceof SVGElement;
      const bg = behind(svg ? el.closest("svg") : el);
      let fg = parse(svg ? s.fill : s.color);
      fg = fg.slice(0, 3).map((v, k) => v * fg[3] + bg[k] * (1 - fg[3]));
      const size = parseFloat(s.fontSize);
      return {
        what: el.tagName + "." + (el.getAttribute("class") || "") + " " +
          el.textContent.trim().slice(0, 30),
        ratio: ratio(fg, bg),
        large: size >= 24 || (size >= 18.66 && +s.fontWeight >= 700),
        shape: el instanceof SVGGeometryElement,
      };
    });
}"""
)

# For each visible field, checkbox and radio button of the selector: the contrast of its edge
# (its border colour) with the page around it, as WCAG 1.4.11 asks of a control's outline.
EDGES = (
    "(selector) => {"
    + COLOURS
    + """
  return [...document.querySelectorAll(selector)]
    .filter(el => el.getBoundingClientRect().width > 0)
    .map(el => ({
      what: el.tagName + " " + (el.name || el.id),
      ratio: ratio(parse(getComputedStyle(el).borderTopColor), behind(el.parentElement)),
    }));
}"""
)


def test_the_dashboards_text_and_chart_bars_have_enough_contrast(page, live_server):
    page.set_viewport_size({"width": 1366, "height": 768})
    login(page, live_server, "admin")
    texts = [t for t in page.evaluate(CONTRASTS, "header *, main *, footer *") if not t["shape"]]
    assert len(texts) > 20
    low = [t for t in texts if t["ratio"] < (3 if t["large"] else 4.5)]
    assert not low, low
    bars = page.evaluate(CONTRASTS, "#expiry-timeline .bar rect")
    assert len(bars) == 26
    low = [b for b in bars if b["ratio"] < 3]
    assert not low, low


def test_forms_buttons_and_field_edges_have_enough_contrast(page, live_server, sandbox):
    """Where a person acts: the text of every button and label (a destructive button's too), and
    the edges of fields, checkboxes and radio buttons, on the forms that order, import and
    delete."""
    from tests.e2e.test_orders_flow import _link_sandbox

    sandbox.seed(certificates=0, seed=4)
    page.set_viewport_size({"width": 1366, "height": 900})
    login(page, live_server, "admin")
    _link_sandbox(page, live_server, sandbox)
    page.goto(live_server.url + "/entrust/manage/")
    delete = page.locator("a[href$='/delete']").first.get_attribute("href")
    for path in ("/entrust/new", "/entrust/import", delete):
        page.goto(live_server.url + path)
        texts = [t for t in page.evaluate(CONTRASTS, "main *") if not t["shape"]]
        assert len(texts) > 5, path
        low = [t for t in texts if t["ratio"] < (3 if t["large"] else 4.5)]
        assert not low, (path, low)
        edges = page.evaluate(
            EDGES, "main input:not([type=hidden]):not([type=submit]), main select, main textarea"
        )
        assert any(e["what"].startswith("INPUT") for e in edges), path
        low = [e for e in edges if e["ratio"] < 3]
        assert not low, (path, low)
