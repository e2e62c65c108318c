"""Print an HTML report to a PDF with a real layout engine: headless Chromium.

The PDF is the same page as the HTML report, laid out by Chromium with the page's print CSS
(``@page`` A4, tables that fit the width, figures that never split, page breaks before each
section). Playwright drives Chromium when the ``playwright`` package is installed
(``page.pdf(format="A4")``); otherwise Chromium's own ``--print-to-pdf`` does the same job, so
a clinic PC needs Chromium and no extra Python package.

Chromium is looked for at ``$NMES_CHROMIUM``, then ``/usr/bin/chromium`` (Debian's package,
which ``scripts/ensure-chromium.sh`` installs), then ``chromium``, ``chromium-browser`` and
``google-chrome`` on the ``PATH``. Where none is found, one :class:`~opennmes.errors.NmesError`
says so and how to install it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from opennmes.errors import NmesError

__all__ = ["find_chromium", "html_to_pdf"]

_DEBIAN = Path("/usr/bin/chromium")
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions"]
_INSTALL = ("install Chromium (Debian/Ubuntu: `sudo apt-get install chromium`, or "
            "scripts/ensure-chromium.sh from the OpenNMES source) or set NMES_CHROMIUM to the "
            "path of a Chromium or Chrome program")


def find_chromium() -> Path:
    """The Chromium program that prints PDFs (see the module's docstring for the order).

    Raises
    ------
    NmesError
        When ``$NMES_CHROMIUM`` names no program, or no Chromium is installed.
    """
    env = os.environ.get("NMES_CHROMIUM")
    if env:
        p = Path(env)
        if p.is_file() and os.access(p, os.X_OK):
            return p
        raise NmesError(f"PDF report: NMES_CHROMIUM={env!r} is not an executable program; "
                        f"{_INSTALL}")
    if _DEBIAN.is_file() and os.access(_DEBIAN, os.X_OK):
        return _DEBIAN
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return Path(found)
    raise NmesError("PDF report: Chromium, which lays out the PDF, was not found "
                    f"(NMES_CHROMIUM unset, no /usr/bin/chromium, none of "
                    f"{', '.join(_CANDIDATES)} on the PATH); {_INSTALL}")


def _with_playwright(chromium: Path, html_file: Path, out: Path) -> bool:
    """Print with Playwright; False when the playwright package is not installed."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        return False
    try:
        with tempfile.TemporaryDirectory(prefix="opennmes-pdf-") as profile, \
                sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                profile, executable_path=str(chromium), headless=True, args=_ARGS)
            try:
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                page.goto(html_file.as_uri(), wait_until="load")
                page.emulate_media(media="print")
                page.pdf(path=str(out), format="A4", print_background=True,
                         prefer_css_page_size=True)
            finally:
                ctx.close()
    except Error as exc:
        raise NmesError(f"PDF report: Chromium ({chromium}) could not print the report: "
                        f"{str(exc).splitlines()[0]}") from exc
    return True


def _with_cli(chromium: Path, html_file: Path, out: Path) -> None:
    """Print with Chromium's ``--print-to-pdf`` (the page's ``@page`` CSS sets A4)."""
    with tempfile.TemporaryDirectory(prefix="opennmes-pdf-") as profile:
        cmd = [str(chromium), *_ARGS, f"--user-data-dir={profile}", "--no-pdf-header-footer",
               f"--print-to-pdf={out}", html_file.as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NmesError(f"PDF report: Chromium ({chromium}) could not print the report: "
                            f"{exc}") from exc
    if not out.is_file() or out.stat().st_size == 0:
        raise NmesError(f"PDF report: Chromium ({chromium}) wrote no PDF (exit "
                        f"{proc.returncode}): {proc.stderr.strip()[-300:]}")


def html_to_pdf(html: str, path: str | Path, *, use_playwright: bool = True) -> Path:
    """Lay out a self-contained HTML page as an A4 PDF with headless Chromium.

    Parameters
    ----------
    html : str
        The page (images embedded; nothing is fetched from the network).
    path : str or Path
        The PDF file to write (its folder is created).
    use_playwright : bool
        Drive Chromium with Playwright where it is installed; False prints with Chromium's
        ``--print-to-pdf`` alone.

    Returns
    -------
    Path
        The PDF written.
    """
    chromium = find_chromium()
    out = Path(path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="opennmes-report-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html, encoding="utf-8")
        # Playwright's sync API refuses to run beside an asyncio loop or another instance in
        # the same thread (a web request, a test's browser): it gets a thread of its own
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="opennmes-pdf") as pool:
            printed = use_playwright and pool.submit(_with_playwright, chromium, page,
                                                     out).result()
        if not printed:
            _with_cli(chromium, page, out)
    return out
