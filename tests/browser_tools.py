"""Helpers of the browser tests: the JavaScript they inject (axe-core, PDF.js) fetched with npm
by ``scripts/ensure-test-js.sh``, an accessibility check of a page, and a PDF's pages rendered
to PNG by PDF.js inside Chromium, with a check for ink in a page's right margin."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def js_tools_dir() -> Path:
    """The folder of the npm packages; runs the (idempotent) fetch script when needed."""
    env = os.environ.get("NMES_TEST_JS_DIR")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME")
                                      or Path.home() / ".cache") / "opennmes" / "test-js"
    axe = base / "node_modules" / "axe-core" / "axe.min.js"
    if not axe.is_file():
        proc = subprocess.run([str(ROOT / "scripts" / "ensure-test-js.sh")], capture_output=True,
                              text=True, check=False,
                              env={**os.environ, "NMES_TEST_JS_DIR": str(base)})
        if proc.returncode != 0:
            pytest.fail(f"scripts/ensure-test-js.sh failed: {proc.stderr.strip()[-500:]}")
    return base



SERIOUS = ("serious", "critical")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now (WCAG 2.x A/AA
    rules and best practices), each with its rule id, help text and the offending nodes."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # through the DevTools protocol, not a <script> tag, which the app's CSP refuses
        src = (js_tools_dir() / "node_modules/axe-core/axe.min.js").read_text()
        page.evaluate("() => {\n" + src + "\n}")
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => n.target.join(' ') + ' :: ' + n.failureSummary)}));
    }""")
    return [v for v in result if v["impact"] in SERIOUS]


def assert_accessible(page: Any, where: str) -> None:
    """No serious or critical axe-core violation on the page."""
    bad = axe_violations(page)
    assert not bad, f"{where}: " + "\n".join(
        f"[{v['impact']}] {v['id']}: {v['help']}\n    " + "\n    ".join(v["nodes"][:5])
        for v in bad)


# --------------------------------------------------------------------------- PDF to PNG
_PDF_ORIGIN = "http://pdf.render.test"
_RENDER = """async ([scale]) => {
    pdfjsLib.GlobalWorkerOptions.workerSrc = '/pdf.worker.min.js';
    const doc = await pdfjsLib.getDocument('/doc.pdf').promise;
    const out = [];
    for (let i = 1; i <= doc.numPages; i++) {
        const page = await doc.getPage(i);
        const vp = page.getViewport({scale});
        const canvas = document.createElement('canvas');
        canvas.width = Math.ceil(vp.width); canvas.height = Math.ceil(vp.height);
        const ctx = canvas.getContext('2d');
        ctx.fillStyle = 'white'; ctx.fillRect(0, 0, canvas.width, canvas.height);
        await page.render({canvasContext: ctx, viewport: vp}).promise;
        const text = (await page.getTextContent()).items.map(t => t.str).join(' ');
        out.push({w_pt: page.view[2] - page.view[0], h_pt: page.view[3] - page.view[1],
                  png: canvas.toDataURL('image/png').split(',')[1], text});
    }
    return out;
}"""


def pdf_pages_png(browser: Any, pdf: Path, out_dir: Path, scale: float = 1.5
                  ) -> list[tuple[Path, float, float]]:
    """Render every page of ``pdf`` to ``out_dir/page-N.png`` with PDF.js in Chromium (and
    the page's text, as PDF.js reads it, to ``out_dir/page-N.txt``).

    ``browser`` is a Playwright browser context. Returns (png path, width pt, height pt)."""
    build = js_tools_dir() / "node_modules" / "pdfjs-dist" / "build"
    files = {"/doc.pdf": (pdf.read_bytes(), "application/pdf"),
             "/pdf.min.js": ((build / "pdf.min.js").read_bytes(), "text/javascript"),
             "/pdf.worker.min.js": ((build / "pdf.worker.min.js").read_bytes(),
                                    "text/javascript"),
             "/": (b"<!doctype html><html><head><script src='/pdf.min.js'></script></head>"
                   b"<body></body></html>", "text/html")}

    def serve(route: Any) -> None:
        path = route.request.url[len(_PDF_ORIGIN):].split("?")[0] or "/"
        body, mime = files.get(path, (b"", "text/plain"))
        route.fulfill(status=200 if path in files else 404, body=body, content_type=mime)

    page = browser.new_page()
    page.route(f"{_PDF_ORIGIN}/**", serve)
    page.goto(f"{_PDF_ORIGIN}/")
    pages = page.evaluate(_RENDER, [scale])
    page.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    result = []
    for i, p in enumerate(pages, start=1):
        path = out_dir / f"page-{i}.png"
        path.write_bytes(base64.b64decode(p["png"]))
        path.with_suffix(".txt").write_text(str(p.get("text", "")), encoding="utf-8")
        result.append((path, float(p["w_pt"]), float(p["h_pt"])))
    return result


def ink_in_band(png: Path, from_mm: float, to_mm: float, page_width_mm: float,
                dark: int = 160) -> int:
    """Number of dark pixels (grey level below ``dark``) in the vertical band of a rendered
    page from ``from_mm`` to ``to_mm`` (measured from the page's left edge).

    Chromium clips what overflows the page's content box at its right edge, so text cut
    there leaves ink right at that edge, and content laid out wider than the page box
    (a wrong page size or scale) leaves ink in the margin beyond it."""
    import numpy as np
    from PIL import Image

    with Image.open(png) as im:
        gray = np.asarray(im.convert("L"))
    w = gray.shape[1]
    x0 = int(round(w * from_mm / page_width_mm))
    x1 = int(round(w * to_mm / page_width_mm))
    return int((gray[:, x0:x1] < dark).sum())
