"""The console's page of a monitoring report: Evidently's HTML as ledgered, served by the API itself with
everything it shows inside it (no CDN, nothing fetched from elsewhere), its figures those of the sealed report."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from governance.events import Event, WindowJudged
from governance.ledger import Ledger
from governance.monitoring.recorded import load_report
from governance.serving.app import create_app
from tests.monitoring.conftest import MODEL, Monitored
from tests.monitoring.test_remediation import alert

# Attributes through which a page loads something (a link a person follows, <a href>, loads nothing).
LOADING = {"src", "srcset", "data", "poster", "action", "formaction", "background", "xlink:href"}
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)|@import\s+['\"]([^'\"]+)")
LOCAL = ("data:", "blob:", "#")


class _Loads(HTMLParser):
    """Every address the HTML makes a browser load: element attributes, <link href>, and url()/@import in CSS."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        for name, value in attrs:
            if value and (name in LOADING or (tag == "link" and name == "href")):
                self.found.append(value)
            elif value and name == "style":
                self._css(value)

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self._css(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def _css(self, text: str) -> None:
        self.found += [url or imported for url, imported in CSS_URL.findall(text)]


def _loaded_from_elsewhere(html: str) -> list[str]:
    parser = _Loads()
    parser.feed(html)
    return [address[:80] for address in parser.found if not address.strip().startswith(LOCAL)]


def _dashboard(html: str) -> dict:
    """The data Evidently's page draws from (a JSON object in an inline script)."""
    found = re.search(r"var (\w+) = (\{.*?\});\s*var additional_graphs_\1 = ", html, re.DOTALL)
    assert found, "no Evidently dashboard data in the page"
    return json.loads(found.group(2))


def _objects(value, *keys: str) -> list[dict]:
    """Every JSON object within `value` that has all of `keys`."""
    if isinstance(value, dict):
        own = [value] if all(k in value for k in keys) else []
        return own + [o for v in value.values() for o in _objects(v, *keys)]
    if isinstance(value, list):
        return [o for v in value for o in _objects(v, *keys)]
    return []


def test_the_evidently_page_loads_nothing_from_elsewhere_and_shows_the_sealed_figures(monitored: Monitored):
    monitored.send(seed=100, drift=1.0)
    result = monitored.run(alert(monitored, "score_drift"))
    assert result.success
    report = result.asset_materializations_for_node(f"{MODEL}__monitoring_report")[0]
    page = urlsplit(report.metadata["evidently_report"].value).path  # the metadata's link to the console
    response = TestClient(create_app(monitored.settings), raise_server_exceptions=False).get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "<script>" in html and "drawDashboard" in html  # Evidently's own page, its library inline
    assert _loaded_from_elsewhere(html) == []
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src" not in policy  # and a browser may fetch nothing

    seq = int(page.rsplit("/", 1)[1])
    judged = Event.from_entry(Ledger.for_settings(monitored.settings).entry(seq))
    assert isinstance(judged, WindowJudged)
    sealed = load_report(monitored.settings.resolve(judged.path), judged.report)  # only if its digest matches
    drift = next(m for m in sealed["measurements"] if m["concern"] == "data_drift")["details"]
    shown = _dashboard(html)
    rows = {row["column_name"]: row for row in _objects(shown, "column_name", "drift_score", "data_drift")}
    tests = {test["feature"]: test for test in drift["by_feature"]}
    assert rows.keys() == tests.keys() == set(monitored.model.feature_columns)
    for feature, test in tests.items():
        assert rows[feature]["drift_score"] == round(test["score"], 6), feature
        assert (rows[feature]["data_drift"] == "Detected") == test["drifted"], feature
    counters = {c["label"]: c["value"] for c in _objects(shown, "label", "value")}
    assert counters["Drifted Columns"] == str(drift["drifted_features"]) != "0"
    assert counters["Columns"] == str(drift["features"])
