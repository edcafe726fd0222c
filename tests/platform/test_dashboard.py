"""The operations dashboard in a real headless Chromium (Debian's /usr/bin/chromium through Playwright):
live updates, the map from the network's geometry, a real click on approve and on stop, checked through the API."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.platform.conftest import TOKENS
from tests.platform.test_city import Live, live, wait_for  # noqa: F401  (the fixture)

pytest.importorskip("libsumo")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.fail("chromium is missing: .ci/run installs it (apt-get install -y chromium)", pytrace=False)
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--no-first-run"]


def test_dashboard_live_map_approve_and_stop(live: Live, tmp_path: Path) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    engineer, viewer = live.as_("engineer"), live.as_("viewer")
    assert engineer.put("/city/autonomy", json={"domain": "mobility", "action_type": "signal_phase",
                                                "level": "approve-then-act", "reason": "dashboard test"}
                        ).status_code == 200
    # a Smart-vs-AI comparison (as `aicity serve --compare report.json` loads it) with a KPI AI City had nothing to
    # measure for: its tile shows "–", not the 0.0 a null becomes in arithmetic
    live.platform.compare = {"mobility": {"delay_s": {"headline": True, "unit": "s", "smart": 12.5, "ai": None}}}
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                        args=FLAGS, headless=True)
        try:
            page = browser.new_page()
            reasons = iter(["checked on the camera", "incident: stop from the dashboard"])
            page.on("dialog", lambda d: d.accept(next(reasons)))
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(f"{live.url}/dashboard/?token={TOKENS['operator']}")
            page.wait_for_function("document.getElementById('state').textContent.includes('running')")
            assert page.text_content("#who") == "otto (operator)"
            page.wait_for_function("document.getElementById('kpis').textContent.includes('12.5 → –')")
            sim0 = float(page.get_attribute("#state", "data-sim") or 0)
            page.wait_for_function(f"parseFloat(document.getElementById('state').dataset.sim) > {sim0}")
            assert page.locator("#map circle.signal").count() == 9
            assert page.locator("#map polyline.road").count() > 10
            page.wait_for_selector("#decisions li")
            page.wait_for_selector("#approvals button.approve")
            aid = int(page.get_attribute("#approvals li", "data-id") or 0)
            page.click(f"#approvals li[data-id='{aid}'] button.approve")
            approved = wait_for(lambda: [a for a in viewer.get("/city/approvals", params={"status": "all"}).json()
                                         if a["id"] == aid and a["status"] != "pending"])
            assert approved[0]["status"] == "approved" and approved[0]["by"] == "otto"
            assert approved[0]["reason"] == "checked on the camera"
            page.click("#stop")
            stop = wait_for(lambda: [s for s in viewer.get("/city/stops").json() if s.get("safe_state_done")])
            assert stop[0]["by"] == "otto" and stop[0]["reason"] == "incident: stop from the dashboard"
            page.wait_for_function("document.getElementById('state').textContent.includes('STOPPED')")
            ledger = viewer.get("/city/ledger", params={"kind": "stop"}).json()["records"]
            assert ledger[-1]["by"] == "otto"
            assert viewer.get("/city/ledger", params={"kind": "safe_state"}).json()["records"]
            assert all(u.startswith(live.url) for u in requests), [u for u in requests if not u.startswith(live.url)]
        finally:
            browser.close()
    time.sleep(0.1)
