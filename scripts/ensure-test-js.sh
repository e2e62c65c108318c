#!/bin/sh
# Fetch the JavaScript the browser tests inject into pages, with npm, into a cache folder:
#   axe-core   (accessibility engine: tests/web check every page for serious/critical issues)
#   pdfjs-dist (PDF.js 3.x, whose UMD build renders the PDF reports' pages to PNG in Chromium)
# Pinned versions; idempotent: returns at once when the stamp of these versions is there.
# Folder: $NMES_TEST_JS_DIR, else ${XDG_CACHE_HOME:-~/.cache}/opennmes/test-js
# (tests/web/conftest.py computes the same folder and runs this script when it is missing).
set -eu
AXE_VERSION=4.10.3
PDFJS_VERSION=3.11.174
DIR="${NMES_TEST_JS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/opennmes/test-js}"
STAMP="$DIR/.stamp-axe-$AXE_VERSION-pdfjs-$PDFJS_VERSION"
if [ -f "$STAMP" ]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "ensure-test-js: npm is missing; install Node.js and npm (apt-get install npm)" \
         "so the accessibility and PDF tests can fetch axe-core and pdfjs-dist" >&2
    exit 1
fi
mkdir -p "$DIR"
# no install scripts and no optional native modules (pdfjs-dist lists node-canvas as optional)
npm install --prefix "$DIR" --no-save --no-audit --no-fund --ignore-scripts --omit=optional \
    --loglevel=error "axe-core@$AXE_VERSION" "pdfjs-dist@$PDFJS_VERSION" >/dev/null
test -f "$DIR/node_modules/axe-core/axe.min.js"
test -f "$DIR/node_modules/pdfjs-dist/build/pdf.min.js"
test -f "$DIR/node_modules/pdfjs-dist/build/pdf.worker.min.js"
rm -f "$DIR"/.stamp-*
touch "$STAMP"
echo "ensure-test-js: axe-core $AXE_VERSION and pdfjs-dist $PDFJS_VERSION in $DIR"
