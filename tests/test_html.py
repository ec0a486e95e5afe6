"""The HTML leaderboard: escaped record values, and what a real browser makes of the page.

The browser test runs headless Chromium (`.ci/install-chromium.sh` installs it) and is skipped
only when no chromium binary can be found.
"""
from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from record_factory import make_record, write

from mmbench.cli.leaderboard import leaderboard

TITLE_HIJACK = "<script>document.title='pwned'</script>"
ATTRIBUTE_HIJACK = "<img src=x onerror=\"document.title='pwned2'\">"
MODELS = ["mvae", "mmvae & friends", TITLE_HIJACK, ATTRIBUTE_HIJACK]


class _Cells(HTMLParser):
    """Text of each model cell, per table in document order, plus the title and the root's attributes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: list[list[str]] = []
        self.title = ""
        self.root: dict[str, str | None] = {}
        self._in: str | None = None
        self.scripts = 0
        self.images: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.root = attrs
        if tag == "script":
            self.scripts += 1
        if tag == "img":
            self.images.append(attrs)
        if tag == "table":
            self.tables.append([])
        if tag == "title" or tag == "td" and attrs.get("class") == "model":
            self._in = tag
            if tag == "td":
                self.tables[-1].append("")

    @property
    def models(self) -> list[str]:
        """The headline table's model cells; every other table must list the same models."""
        assert self.tables and all(sorted(table) == sorted(self.tables[0]) for table in self.tables)
        return self.tables[0]

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in == "td":
            self.tables[-1][-1] += data
        elif self._in == "title":
            self.title += data


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("results")
    for i, model in enumerate(MODELS):
        write(results, make_record(model, 0, coherence=0.2 + 0.1 * i, metrics={"fid/m0": 40.0 + i}), f"run{i}")
    out = results.parent / "index.html"
    result = CliRunner().invoke(leaderboard, ["--results", str(results), "--format", "html", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_record_values_are_escaped(page):
    text = page.read_text()
    assert TITLE_HIJACK not in text and ATTRIBUTE_HIJACK not in text
    parsed = _Cells()
    parsed.feed(text)
    assert parsed.scripts == 1  # only the page's own sorting script
    assert all(img["src"].startswith("data:image/svg+xml;base64,") for img in parsed.images) and parsed.images
    assert sorted(parsed.models) == sorted(MODELS)


def _chromium() -> str | None:
    return shutil.which("chromium") or next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)


def _dump_dom(url: str, profile: Path) -> str:
    binary = _chromium()
    if binary is None:
        pytest.skip("chromium not found (install it with .ci/install-chromium.sh)")
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--dump-dom", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout, done.stderr[-2000:]
    return done.stdout


def test_browser_shows_every_model_as_text_and_runs_no_injected_script(page, tmp_path):
    dom = _Cells()
    dom.feed(_dump_dom(page.as_uri() + "#sort=model", tmp_path / "profile"))
    assert dom.title == "mmbench leaderboard"  # the injected scripts would have changed it
    assert dom.root.get("data-sortable") == "ready"  # the page's own script ran to the end
    assert dom.models == sorted(MODELS)  # #sort=model reordered the rows, every name shown as text
    assert not any(img.get("src") == "x" for img in dom.images)


def test_headline_tables_fit_a_1400_pixel_window(tmp_path):
    """Every board's headline table fits a 1,400 px wide window without horizontal scrolling, with
    all of a real record's metric families present (they go to the per-family tables)."""
    if _chromium() is None:
        pytest.skip("chromium not found (install it with .ci/install-chromium.sh)")
    results = tmp_path / "results"
    many = {**{f"feature_distance/m{m}": 50.0 + m for m in range(5)}, "feature_distance/mean": 52.0,
            **{f"likelihood/conditional/k={k}": -6000.0 + k for k in range(1, 5)}, "likelihood/joint": -6391.24,
            **{f"latent_probe/k={k}": 0.5 for k in range(1, 5)}, "discrepancy/elbo_gap": 717.2,
            **{f"quality_gap/feature_distance/m{m}": 3.0 for m in range(5)}}
    for i, model in enumerate(["unimodal", "mvae", "mmvae", "mopoe", "mmvaeplus", "mvtcae", "mmjsd", "mmvm"]):
        for seed in range(3):
            write(results, make_record(model, seed, coherence=0.2 + 0.05 * i + 0.01 * seed, metrics=many), f"{model}-{seed}")
    page = tmp_path / "index.html"
    assert CliRunner().invoke(leaderboard, ["--results", str(results), "--format", "html", "--out", str(page)]).exit_code == 0
    wrapper = tmp_path / "wrap.html"
    wrapper.write_text(
        f'<!DOCTYPE html><html><body style="margin:0"><iframe id="f" src="{page.as_uri()}" '
        'style="width:1400px;height:900px;border:0"></iframe><pre id="out">pending</pre><script>'
        "document.getElementById('f').addEventListener('load', function () {"
        "  var scrolls = document.getElementById('f').contentDocument.querySelectorAll('section > .scroll');"
        "  document.getElementById('out').textContent = Array.prototype.map.call(scrolls, function (s) {"
        "    return s.scrollWidth + '/' + s.clientWidth; }).join(' ');"
        "});</script></body></html>"
    )
    done = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                           "--virtual-time-budget=5000", "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'profile'}",
                           "--dump-dom", wrapper.as_uri()], capture_output=True, text=True, timeout=120)
    widths = done.stdout.split('<pre id="out">')[1].split("<")[0].split()
    assert widths and all(int(w.split("/")[0]) <= int(w.split("/")[1]) for w in widths), widths
