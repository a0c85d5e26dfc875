"""The HTML report rendered by a real browser: Debian's headless Chromium.

It loads the page from a file, dumps the DOM the browser built (what a reader sees, not what we
wrote) and takes a screenshot, kept as tests/output/report.png. Chromium is required: without it
this test fails and says how to install it.
"""

import json
import pathlib
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser

import pytest

from ansible_collections.badgateway.k8s.plugins.module_utils.report_render import to_html

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "unit" / "fixtures" / "result_stale_upstream.json"
OUTPUT = ROOT / "tests" / "output"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FAIL_RGB, PASS_RGB = (0xD9, 0x30, 0x25), (0x1E, 0x8E, 0x3E)


@pytest.fixture(scope="module")
def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail(
            "chromium is not installed, and this test renders the HTML report in it. "
            "Install Debian's package: apt-get install -y chromium"
        )
    return path


def run_chromium(chromium, tmp_path, *args):
    profile = tmp_path / ("profile-%d" % len(list(tmp_path.glob("profile-*"))))
    profile.mkdir()
    proc = subprocess.run(
        [chromium, *FLAGS, "--user-data-dir=%s" % profile, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, "chromium failed (rc %s): %s" % (
        proc.returncode,
        proc.stderr[-2000:],
    )
    return proc.stdout


class Dom(HTMLParser):
    """Elements of a dumped DOM: (tag, attrs, text inside)."""

    VOID = {"meta", "br", "img", "input", "link", "hr", "path", "rect", "circle"}

    def __init__(self, page):
        super().__init__()
        self.elements, self._open = [], []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": dict(attrs), "text": []}
        self.elements.append(element)
        if tag not in self.VOID:
            self._open.append(element)

    def handle_startendtag(self, tag, attrs):
        self.elements.append({"tag": tag, "attrs": dict(attrs), "text": []})

    def handle_endtag(self, tag):
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index]["tag"] == tag:
                del self._open[index:]
                break

    def handle_data(self, data):
        for element in self._open:
            element["text"].append(data)

    def find(self, tag=None, **attrs):
        """Elements with these attributes (data_from means data-from), of this tag if given."""
        return [
            e
            for e in self.elements
            if (tag is None or e["tag"] == tag)
            and all(e["attrs"].get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def one(self, tag=None, **attrs):
        found = self.find(tag, **attrs)
        assert len(found) == 1, "expected one element with %r, found %d" % (attrs, len(found))
        return found[0]


def classes(element):
    return set((element["attrs"].get("class") or "").split())


def text(element):
    return " ".join("".join(element["text"]).split())


def png_pixels(data):
    """Width, height and rows of (r, g, b) of an 8-bit RGB/RGBA non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, compression, filtering, interlace = header
    assert depth == 8 and color in (2, 6) and (compression, filtering, interlace) == (0, 0, 0), (
        "unexpected PNG format %r" % (header,)
    )
    channels = 3 if color == 2 else 4
    raw, stride, rows, prev = (
        zlib.decompress(idat),
        width * channels,
        [],
        bytearray(width * channels),
    )
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = prev[i], prev[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (
                    line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)
                ) & 255
        rows.append([tuple(line[x : x + 3]) for x in range(0, stride, channels)])
        prev = line
    return width, height, rows


def near(pixel, rgb, tolerance=24):
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, rgb))


@pytest.fixture(scope="module")
def result():
    return json.loads(FIXTURE.read_text())


def test_chromium_renders_the_chain_with_the_stale_replica_failed(chromium, result, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(to_html(result), encoding="utf-8")
    dom = Dom(run_chromium(chromium, tmp_path, "--dump-dom", page.as_uri()))

    assert text(dom.one(id="cause")) == "stale_upstream"
    assert "web/nginx-0 still dials 127.1.1.2:8080" in text(dom.one(id="summary"))
    assert [e for e in dom.elements if e["tag"] == "svg"], "no SVG drawing in the page"

    nodes = {
        e["attrs"]["data-node"]: e for e in dom.elements if e["tag"] == "g" and "node" in classes(e)
    }
    assert set(nodes) == {
        "client",
        "proxy:web/nginx-0",
        "proxy:web/nginx-1",
        "service:app/open-webui",
        "stale:127.1.1.2:8080",
        "endpoint:127.1.1.3:8080",
        "pod:app/open-webui-0",
    }
    assert "fail" in classes(nodes["proxy:web/nginx-0"]) and "pass" not in classes(
        nodes["proxy:web/nginx-0"]
    )
    assert "pass" in classes(nodes["proxy:web/nginx-1"])
    assert {"stale", "fail"} <= classes(nodes["stale:127.1.1.2:8080"])
    assert "127.1.1.2:8080" in text(nodes["stale:127.1.1.2:8080"])
    for healthy in ("service:app/open-webui", "endpoint:127.1.1.3:8080", "pod:app/open-webui-0"):
        assert "pass" in classes(nodes[healthy]), healthy
    assert "fail" in classes(nodes["client"])

    drawn = [e for e in dom.elements if e["tag"] == "g" and "link" in classes(e)]
    assert len(drawn) == len(result["chain"]["links"]) == 7
    stale_link = dom.one("g", data_from="proxy:web/nginx-0", data_to="stale:127.1.1.2:8080")
    assert "fail" in classes(stale_link)
    rows = {
        e["attrs"]["data-link"]: e
        for e in dom.elements
        if e["tag"] == "tr" and "link-row" in classes(e)
    }
    assert len(rows) == 7
    row = rows[stale_link["attrs"]["data-link"]]
    assert "fail" in classes(row)
    assert "FAIL" in text(row) and "the Service's ready endpoints are 127.1.1.3:8080" in text(row)
    good = rows[
        dom.one("g", data_from="proxy:web/nginx-1", data_to="service:app/open-webui")["attrs"][
            "data-link"
        ]
    ]
    assert "pass" in classes(good) and "GET http://open-webui.app:8080/ -> 200" in text(good)

    layers = {
        e["attrs"]["data-layer"]: e
        for e in dom.elements
        if e["tag"] == "tr" and "data-layer" in e["attrs"]
    }
    assert {k: classes(v) - {"layer"} for k, v in layers.items()} == {
        "symptom": {"fail"},
        "backend_pods": {"pass"},
        "service": {"pass"},
        "connectivity": {"pass"},
        "proxy_logs": {"fail"},
    }
    assert "nginx -t" in text(dom.one(id="remediation")) and "31 → 58" in text(
        dom.one(id="remediation")
    )


def test_chromium_screenshot_shows_pass_and_fail(chromium, result, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(to_html(result), encoding="utf-8")
    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / "report.png"
    if shot.exists():
        shot.unlink()
    run_chromium(
        chromium, tmp_path, "--screenshot=%s" % shot, "--window-size=1200,900", page.as_uri()
    )
    assert shot.exists(), "chromium wrote no screenshot"
    width, height, rows = png_pixels(shot.read_bytes())
    assert (width, height) == (1200, 900)
    # The drawing sits in the top half of the page: it must show both colours of a judged link.
    drawing = [p for row in rows[150:450] for p in row]
    fail = sum(1 for p in drawing if near(p, FAIL_RGB))
    ok = sum(1 for p in drawing if near(p, PASS_RGB))
    assert fail > 500 and ok > 500, (
        "the chain did not render its pass/fail colours (fail px %d, pass px %d)" % (fail, ok)
    )
    assert len(set(drawing)) > 50, "the drawing area is nearly uniform: nothing was drawn"


def test_chromium_builds_no_element_from_values(chromium, result, tmp_path):
    """Evidence that looks like markup stays text in a real browser's DOM."""
    evil = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>\"'"
    result = json.loads(json.dumps(result))
    result["verdict"]["summary"] = evil
    result["chain"]["proxies"][0]["evidence"].append(evil)
    result["chain"]["links"][0]["evidence"].append(evil)
    page = tmp_path / "evil.html"
    page.write_text(to_html(result), encoding="utf-8")
    dom = Dom(run_chromium(chromium, tmp_path, "--dump-dom", page.as_uri()))
    assert not [e for e in dom.elements if e["tag"] in ("script", "img")]
    assert text(dom.one(id="summary")) == " ".join(evil.split())
    title = [e for e in dom.elements if e["tag"] == "title"][0]
    assert text(title) == "502 diagnosis: stale_upstream"
