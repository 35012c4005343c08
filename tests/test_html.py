"""The book as readers see it: the built HTML scanned for error outputs, then every page opened
in headless Chromium (math typeset from the book's own MathJax, figures loaded, Colab link,
verdict box). Both read the one build of the ``built_book`` fixture (marked ``book``)."""
import functools
import html as htmllib
import http.server
import re
import shutil
import socketserver
import sys
import threading
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import notebooks  # noqa: E402

pytestmark = pytest.mark.book
SCREENSHOTS = ROOT / "build" / "screenshots"  # build artefacts (git-ignored)
# Debian's chromium (make browser installs it); Google Chrome where a CI image ships that instead
CHROMIUM = shutil.which("chromium") or shutil.which("google-chrome") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver")

# What an error looks like in a rendered notebook page: a traceback, an error output, or an
# exception name printed at the start of a stream line.
# A warning counts too, wherever it starts (Python prints it after the file and line that raised it,
# e.g. the kernel's temporary /tmp/ipykernel_<pid>/<n>.py), and so does that temporary path.
ERROR_PATTERNS = [re.compile(p) for p in (
    r"Traceback \(most recent call last\)", r'class="output (?:traceback|error)', r"\bClaimFailed\b",
    r"(?m)^\w*(?:Error|Exception|Warning): ", r"\b\w+Warning: ", r"ipykernel_\d+")]


def pages() -> list[str]:
    return notebooks.toc_files()


def figure_count(stem: str) -> int:
    nb = nbformat.read(notebooks.resolve(ROOT / "book", stem), as_version=4)
    return sum(bool(c.metadata.get("mystnb", {}).get("figure")) for c in nb.cells)


def test_the_error_scan_sees_a_warning_printed_after_its_path():
    line = "/tmp/ipykernel_4242/1234.py:7: RuntimeWarning: invalid value encountered in divide"
    assert sum(bool(p.search(line)) for p in ERROR_PATTERNS) == 2  # the warning and the kernel's path


def test_no_page_shows_an_error_output(html):
    # the executed pages (chapters and report); the API reference names ClaimFailed by design
    for stem in [nb.stem for nb in notebooks.notebooks()]:
        text = htmllib.unescape(re.sub(r"<[^>]+>", "", (html / f"{stem}.html").read_text()))
        for pat in ERROR_PATTERNS:
            m = pat.search(text)
            assert m is None, f"{stem}.html shows an error: ...{text[max(0, m.start() - 200): m.end() + 200]}..."


def test_no_page_shows_machine_paths_or_injected_parameters(html, built_book):
    """A reader sees neither the build machine's folders nor papermill's injected parameter cells."""
    machine = {str(built_book.root), str(ROOT), str(Path.home()) + "/"}
    for stem in pages():
        page = (html / f"{stem}.html").read_text()
        shown = [m for m in machine if m in page]
        assert not shown, f"{stem}.html shows machine paths {shown}"
        assert "injected-parameters" not in page and "# Parameters" not in page, f"{stem}.html shows injected parameters"


def test_figures_are_numbered_and_captioned(html):
    for stem in notebooks.chapters():
        page = (html / f"{stem}.html").read_text()
        numbers = re.findall(r'<span class="caption-number">Fig\. (\d+) </span>', page)
        assert len(numbers) == figure_count(stem) > 0, f"{stem}: {len(numbers)} numbered figures"


@pytest.fixture(scope="module")
def server(html):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(html))
    with socketserver.TCPServer(("127.0.0.1", 0), handler) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
        httpd.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (Path(CHROMIUM).exists() and CHROMEDRIVER):
        pytest.skip("no Chromium/ChromeDriver: `make browser` installs Debian's chromium and chromium-driver "
                    "(needs apt-get as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def _open(browser, url: str) -> None:
    browser.get(url)
    # wait for MathJax to finish typesetting (the page loads it from the book's own _static)
    browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "if (![...document.scripts].some(s => /mathjax/i.test(s.src))) { done(null); return; }"
        "const wait = () => (window.MathJax && MathJax.startup && MathJax.startup.promise)"
        "  ? MathJax.startup.promise.then(() => done(true), () => done(false)) : setTimeout(wait, 50);"
        "wait();")


def _screenshot(browser, path: Path, full_page: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if full_page:
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1280, min(height, 12000))
    browser.save_screenshot(str(path))
    browser.set_window_size(1280, 1000)


# The views a reader opens the book in: the theme follows the system's colour scheme; 390 px is a phone.
VIEWS = [("light", 1280), ("dark", 1280), ("light", 390), ("dark", 390)]

# What a verdict box shows a reader: every element that holds text, with its contrast against the
# background it is drawn on (WCAG's ratio; the first opaque background up the tree), and anything drawn
# outside the box or cut by it.
_VERDICT_VIEW = """
const box = document.querySelector('.geomlib-verdict'); if (!box) return null;
box.scrollIntoView();
const rgb = s => { const m = s.match(/[\\d.]+/g).map(Number); return m.length > 3 ? m : [...m, 1]; };
const lin = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
const lum = c => 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2]);
const under = e => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
                     if (c[3] > 0.5) return c; } return [255, 255, 255, 1]; };
const b = box.getBoundingClientRect(), low = [], out = [];
for (const e of [box, ...box.querySelectorAll('*')]) {
  const r = e.getBoundingClientRect();
  if (!r.width || !r.height) continue;
  if ([...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) {
    const a = lum(rgb(getComputedStyle(e).color)), z = lum(under(e));
    const ratio = (Math.max(a, z) + 0.05) / (Math.min(a, z) + 0.05);
    if (ratio < 4.5) low.push([e.tagName, e.innerText.slice(0, 40), +ratio.toFixed(2)]);
  }
  if (r.right > b.right + 1 || r.left < b.left - 1 || e.scrollWidth > e.clientWidth + 1)
    out.push([e.tagName, e.innerText.slice(0, 40), Math.round(r.left), Math.round(r.right), e.scrollWidth, e.clientWidth]);
}
return {low, out, width: Math.round(b.width), page: document.documentElement.clientWidth,
        text: box.innerText, claims: [...box.querySelectorAll('tbody code')].map(c => c.innerText)};
"""
# Markdown a reader should never see as text: a glue role, a substitution, bold or a link left unparsed.
RAW_MARKDOWN = re.compile(r"\{glue(?::\w+)?\}|\{\{|\}\}|\*\*\w|\]\(")


def _view(browser, mode: str, width: int) -> None:
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia",
                            {"features": [{"name": "prefers-color-scheme", "value": mode}]})
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": width < 600})


def test_verdicts_read_in_every_view(server, browser, html, built_book):
    """Every chapter's verdict box in light and dark mode, at 1,280 px and at a phone's 390 px:
    its text at a contrast of at least 4.5:1 against what it is drawn on, nothing drawn outside the
    box or cut by it, every claim's measured value and check shown; no page shows raw Markdown. The
    screenshots judged are saved (build/screenshots/views/)."""
    import json
    ledger = json.loads((built_book.build / "ledger.json").read_text())
    shots = SCREENSHOTS / "views"
    shots.mkdir(parents=True, exist_ok=True)
    problems = []
    try:
        for mode, width in VIEWS:
            _view(browser, mode, width)
            for stem in notebooks.chapters():
                _open(browser, f"{server}/{stem}.html")
                where = f"{stem}.html ({mode}, {width} px)"
                theme = browser.execute_script("return document.documentElement.dataset.theme")
                assert theme == mode, f"{where}: the page's theme is {theme!r}"
                v = browser.execute_script(_VERDICT_VIEW)
                assert v is not None, f"{where}: no verdict box"
                browser.find_element("css selector", ".geomlib-verdict").screenshot(
                    str(shots / f"{stem}-{mode}-{width}.png"))
                rows = [r for r in ledger.values() if r["chapter"] == stem]
                if v["low"]:
                    problems.append(f"{where}: text below 4.5:1 contrast: {v['low'][:3]}")
                if v["out"]:
                    problems.append(f"{where}: verdict content outside the box or cut: {v['out'][:3]}")
                if sorted(v["claims"]) != sorted(r["claim"] for r in rows):
                    problems.append(f"{where}: the box shows claims {v['claims']}")
                shown = [r["claim"] for r in rows if f"{r['measured']:.4g}" not in v["text"]]
                if shown:
                    problems.append(f"{where}: measured values not shown for {shown}")
                prose = browser.execute_script(
                    "return [...document.querySelectorAll('article p, article li, article td, article h1, article h2')]"
                    ".filter(e => !e.closest('pre, .cell_input')).map(e => e.innerText).join('\\n')")
                raw = RAW_MARKDOWN.findall(prose)
                if raw:
                    problems.append(f"{where}: raw Markdown on the page: {raw[:3]}")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    assert not problems, "\n".join(problems)
    assert len(list(shots.glob("*.png"))) >= len(VIEWS) * len(notebooks.chapters())


def test_every_page_in_a_real_browser(server, browser, html, built_book):
    repo = notebooks.config()["repository"]["url"].removeprefix("https://github.com/")
    typeset_pages, chapters = [], set(notebooks.chapters())
    for stem in pages():
        _open(browser, f"{server}/{stem}.html")
        where = f"{stem}.html"
        assert browser.title and "404" not in browser.title, where
        # MathJax from the book itself, and every formula typeset without errors
        raw_math = browser.execute_script("return document.querySelectorAll('.math').length")
        src = browser.execute_script("return [...document.scripts].map(s => s.src).filter(s => /mathjax/i.test(s))")
        if raw_math:
            assert src and all(s.startswith(server) for s in src), f"{where}: MathJax not served locally: {src}"
        typeset = browser.execute_script("return document.querySelectorAll('mjx-container').length")
        errors = browser.execute_script("return document.querySelectorAll('mjx-merror').length")
        assert typeset >= raw_math and errors == 0, f"{where}: {raw_math} formulas, {typeset} typeset, {errors} errors"
        if typeset:
            typeset_pages.append(stem)
        text = browser.execute_script("return document.body.innerText")
        assert "Traceback (most recent call last)" not in text, where
        if stem not in chapters:
            continue
        # figures: every captioned figure is an image that loaded and has a size
        figs = browser.execute_script(
            "return [...document.querySelectorAll('figure img')].map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
        assert len(figs) == figure_count(stem), f"{where}: {len(figs)} figures"
        assert all(ok and w > 100 and h > 100 for ok, w, h in figs), f"{where}: empty or broken figure {figs}"
        # the Colab badge opens this chapter's reader-ready copy in the configured repository
        colab = browser.execute_script(
            "return [...document.querySelectorAll('a')].map(a => a.href).filter(h => h.includes('colab.research.google.com'))")
        want = f"colab.research.google.com/github/{repo}/blob/{notebooks.COLAB_BRANCH}/{stem}.ipynb"
        assert colab and all(h.endswith(want) for h in colab), f"{where}: Colab links {colab}"
        verdict = browser.execute_script("const v = document.querySelector('.geomlib-verdict'); "
                                         "return v ? v.innerText : null")
        assert verdict and "Verdict" in verdict, f"{where}: no verdict box"
        # the setup table: a one-line summary, the table folded under it, a real table that fits the page
        setup = browser.execute_script(
            "const s = document.querySelector('.geomlib-setup'); if (!s) return null;"
            "const d = s.querySelector('details'); if (d) d.open = true;"
            "const t = s.querySelector('table');"
            "return {table: !!t, folded: !!d, right: t ? t.getBoundingClientRect().right : 0,"
            "        width: document.documentElement.clientWidth}")
        if "Setup vs the authors" in text:
            assert setup and setup["table"] and setup["folded"], f"{where}: the setup table is not a folded <table>"
            assert setup["right"] <= setup["width"], f"{where}: the setup table overflows the page ({setup})"
    for stem in pages():  # no page shows Markdown table text where a table was meant
        _open(browser, f"{server}/{stem}.html")
        raw = browser.execute_script(
            "return [...document.querySelectorAll('p, li, td')].filter(e => !e.closest('pre, .cell_input'))"
            ".flatMap(e => e.innerText.split('\\n')).map(l => l.trim())"
            ".filter(l => (l.length > 2 && l.startsWith('|') && l.endsWith('|')) || l.includes('|---|'))")
        assert not raw, f"{stem}.html shows Markdown table text: {raw[:3]}"
    assert {"intro", "spectral_bias", "linear_net"} <= set(typeset_pages), typeset_pages  # pages known to have math
    # the reproducibility report: a real table, one row per claim of the ledger, status coloured
    import json
    ledger = json.loads((built_book.build / "ledger.json").read_text())
    _open(browser, f"{server}/report.html")
    rows = browser.execute_script(
        "return [...document.querySelectorAll('table.geomlib-report tbody tr')].map(r => "
        "[r.querySelector('code').innerText, getComputedStyle(r.cells[2]).backgroundColor])")
    assert sorted(r[0] for r in rows) == sorted(ledger), "report.html: the table's rows are not the ledger's claims"
    assert all(bg not in ("rgba(0, 0, 0, 0)", "transparent") for _, bg in rows), "report.html: status not coloured"
    report_text = browser.execute_script("return document.body.innerText")
    assert "| claim | chapter |" not in report_text  # no raw Markdown
    # the report shows no code and no parameter cell, fits a 1,280-px window, and names the machine
    assert "ledger: str" not in report_text and "import os" not in report_text, "report.html shows its code"
    fit = browser.execute_script("const t = document.querySelector('table.geomlib-report');"
                                 "return [t.getBoundingClientRect().right, document.documentElement.clientWidth,"
                                 "        document.documentElement.scrollWidth]")
    assert fit[0] <= fit[1] and fit[2] <= fit[1], f"report.html: the table does not fit 1,280 px: {fit}"
    header = browser.execute_script("const h = document.querySelector('.geomlib-report-header');"
                                    "return h ? h.innerText : ''")
    assert all(w in header for w in ("Built on", "device", "precision", "torch", "threads")), header
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    _open(browser, f"{server}/intro.html")
    _screenshot(browser, SCREENSHOTS / "intro.png")
    _open(browser, f"{server}/linear_net.html")
    _screenshot(browser, SCREENSHOTS / "linear_net.png")
    box = browser.find_element("css selector", ".geomlib-verdict")
    browser.execute_script("arguments[0].scrollIntoView()", box)
    box.screenshot(str(SCREENSHOTS / "linear_net-verdict.png"))
    _open(browser, f"{server}/report.html")
    _screenshot(browser, SCREENSHOTS / "report.png")
    _open(browser, f"{server}/path_finding_from_memory.html")
    setup = browser.find_element("css selector", ".geomlib-setup")
    browser.execute_script("arguments[0].querySelector('details').open = true; arguments[0].scrollIntoView()", setup)
    setup.screenshot(str(SCREENSHOTS / "path_finding_from_memory-setup.png"))
    assert all((SCREENSHOTS / f).stat().st_size > 10_000 for f in ("intro.png", "linear_net.png", "linear_net-verdict.png",
                                                                   "report.png", "path_finding_from_memory-setup.png"))
