"""The dashboard in real headless Chromium against a running stack fed by the simulator.

Every page loads with no console error and every panel reaches a final state; the numbers the charts
plot equal the API's answer for the same request; a click on an event opens its trace; an alert in
the store appears on the alerts page and links to the events that triggered it. Screenshots of each
page go to test-artifacts/ui/.
"""

from __future__ import annotations

import json
import math
from urllib.parse import urlencode

import httpx
import pytest

PAGES = ("overview", "business", "performance", "logs", "alerts")
SETTLED = """() => {
  const panels = [...document.querySelectorAll('[data-panel]')];
  return document.body.dataset.refreshed && panels.length > 0 && panels.every(p => p.dataset.state !== 'loading');
}"""


@pytest.fixture
def page(browser, stack):
    """A fresh signed-in page; console errors, page errors, failed and non-loopback requests are collected
    (tests assert the list stays empty)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    login = context.request.post(f"{stack.url}/auth/login", data={"token": stack.token})
    assert login.status == 204, login.text()
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}"))
    page.on("request", lambda r: None if r.url.startswith(stack.url) or r.url.startswith("data:")
            else problems.append(f"request outside the API: {r.url}"))
    page.problems = problems
    yield page
    context.close()


def open_page(page, stack, name: str, arg: str = "", **params) -> None:
    """Open ``/ui/#/name`` on the test's absolute range (auto-refresh kept, but over a fixed range)."""
    query = urlencode({"start": stack.start, "end": stack.end, **params})
    page.goto(f"{stack.url}/ui/#/{name}{'/' + arg if arg else ''}?{query}")
    page.wait_for_function(SETTLED, timeout=20_000)


def panel_states(page) -> dict[str, str]:
    """data-state of every panel; a panel in error reports its message too."""
    return page.eval_on_selector_all("[data-panel]", """els => Object.fromEntries(els.map(e => [e.dataset.panel,
        e.dataset.state === 'error' ? 'error: ' + e.querySelector('.panel-message').textContent : e.dataset.state]))""")


def series(page, panel: str) -> tuple[dict, str]:
    el = page.locator(f"[data-panel='{panel}']")
    return json.loads(el.get_attribute("data-series")), el.get_attribute("data-source")


def close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def test_root_redirects_and_the_shell_is_static(stack):
    with httpx.Client(base_url=stack.url) as client:
        root = client.get("/")
        assert root.status_code == 307 and root.headers["location"] == "/ui/"
        index = client.get("/ui/")
        assert index.status_code == 200 and "fleetlens" in index.text and index.headers["cache-control"] == "no-cache"
        script = next(part.split('"')[1] for part in index.text.split("<script")[1:] if 'src="' in part)
        asset = client.get(f"/ui/{script}")
        assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
        assert client.get("/ui/assets/nope.js").status_code == 404


@pytest.mark.parametrize("name", PAGES)
def test_every_page_loads_without_errors(page, stack, artifacts, name):
    open_page(page, stack, name)
    states = panel_states(page)
    assert states and all(s in ("ready", "empty") for s in states.values()), states
    # the simulated backlog fills every panel of these pages
    must_be_ready = {"overview": ["ingested", "error-rate-chart", "active-alerts-list"],
                     "business": ["transactions", "page-views", "amounts", "users", "retries"],
                     "performance": ["latency", "latency-table", "cpu", "mem", "active-users"],
                     "logs": ["events"], "alerts": ["alerts-firing", "alerts-history"]}[name]
    assert all(states[p] == "ready" for p in must_be_ready), states
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    assert not page.problems, page.problems


def test_overview_numbers_equal_the_api(page, stack):
    open_page(page, stack, "overview", interval="5m")
    data, source = series(page, "ingested")
    assert "interval=5m" in source
    body = stack.get(source)
    per = body["interval_s"]
    assert data["t"] == [b["bucket"] for b in body["buckets"]]
    assert all(close(x, b["events"] / per) for x, b in zip(data["events/s"], body["buckets"], strict=True))
    assert all(close(x, b["metrics"] / per) for x, b in zip(data["metric samples/s"], body["buckets"], strict=True))
    assert sum(b["events"] for b in body["buckets"]) > 50_000
    errors, _ = series(page, "error-rate-chart")
    assert all(close(x, 100 * b["errors"] / b["logs"] if b["logs"] else None) for x, b in zip(errors["error %"], body["buckets"]))
    assert page.get_attribute("[data-stat='events']", "data-value") == str(body["totals"]["events"])
    assert int(page.get_attribute("[data-stat='active-alerts']", "data-value")) == 1
    lag = page.get_attribute("[data-stat='lag']", "data-value")
    assert lag != "" and int(lag) >= 0  # from the running worker
    assert not page.problems, page.problems


def test_business_numbers_equal_the_api(page, stack):
    open_page(page, stack, "business", interval="15m")
    tx, source = series(page, "transactions")
    body = stack.get(source)
    assert "interval=15m" in source and len(body["totals"]) >= 3
    assert tx["t"] == [r["bucket"] for r in body["totals"]]
    assert tx["transactions"] == [r["transactions"] for r in body["totals"]] and sum(tx["transactions"]) > 0
    assert tx["failed buys"] == [r["failed_buys"] for r in body["totals"]]
    views, _ = series(page, "page-views")
    assert views["page views"] == [r["page_views"] for r in body["totals"]]
    amounts, _ = series(page, "amounts")
    assert amounts["sales"] == [r["transaction_amount"] for r in body["totals"]]
    shown = json.loads(page.get_attribute("[data-panel='retries']", "data-rows"))
    expected: dict[str, dict] = {}
    for r in body["retries"]:
        acc = expected.setdefault(r["provider"], {"retries": 0, "succeeded": 0, "failed": 0, "attempts": 0})
        for k in acc:
            acc[k] += r[k]
    assert {s["provider"]: {k: s[k] for k in ("retries", "succeeded", "failed", "attempts")} for s in shown} == expected
    assert page.locator("[data-panel='retries'] tr[data-provider]").count() == len(expected) > 0
    users, usource = series(page, "users")
    ubody = stack.get(usource)
    assert users["viewing"] == [r["viewing"] for r in ubody["users"]] and max(users["viewing"]) > 0
    assert users["buying"] == [r["buying"] for r in ubody["users"]]
    assert not page.problems, page.problems


def test_performance_numbers_equal_the_api(page, stack):
    open_page(page, stack, "performance", interval="5m", q="p99")
    lat, source = series(page, "latency")
    body = stack.get(source)
    assert "by=operation" in source
    for row in body["durations"]:
        i = lat["t"].index(row["bucket"])
        assert close(lat[f"{row['service']}/{row['name']}"][i], row["p99_ms"])
    assert len(lat) - 1 == len({(r["service"], r["name"]) for r in body["durations"]})
    cpu, rsource = series(page, "cpu")
    rbody = stack.get(rsource)
    for row in rbody["resources"]:
        assert close(cpu[row["host"]][cpu["t"].index(row["bucket"])], row["cpu_avg"])
    active, _ = series(page, "active-users")
    assert active["active users"] == [r["active_users"] for r in rbody["active_users"]]
    assert not page.problems, page.problems


def test_clicking_an_event_opens_its_trace(page, stack, artifacts):
    open_page(page, stack, "logs", kind="business", text="")
    row = page.locator("[data-panel='events'] tr[data-action-id]").first
    action_id = row.get_attribute("data-action-id")
    row.locator("td").nth(2).click()
    page.wait_for_url(f"**/ui/#/trace/{action_id}*")
    page.wait_for_function("() => document.querySelector(\"[data-panel='waterfall']\").dataset.state === 'ready'")
    trace = stack.get(f"/trace/{action_id}", limit=2000)
    spans = json.loads(page.get_attribute("[data-panel='waterfall']", "data-spans"))
    assert [s["service"] for s in spans] == [s["service"] for s in trace["spans"]]
    assert page.locator(".wf-row").count() == len(trace["spans"])
    assert page.locator("[data-panel='trace-events'] tr[data-event-id]").count() == len(trace["events"])
    page.screenshot(path=str(artifacts / "trace.png"), full_page=True)
    assert not page.problems, page.problems


def test_logs_filters_and_pages(page, stack):
    open_page(page, stack, "logs", level="error")
    levels = set(page.eval_on_selector_all("[data-panel='events'] .lvl", "els => els.map(e => e.textContent)"))
    assert levels == {"error"}
    first = page.eval_on_selector_all("[data-panel='events'] tr[data-event-id]", "els => els.map(e => e.dataset.eventId)")
    source = page.get_attribute("[data-panel='events']", "data-source")
    assert [e["event_id"] for e in stack.get(source)["events"]] == first
    page.click("button.older")
    page.wait_for_function("() => document.querySelector('.pager span').textContent.includes('page 2')")
    page.wait_for_function("() => document.querySelector(\"[data-panel='events']\").dataset.state === 'ready'")
    second = page.eval_on_selector_all("[data-panel='events'] tr[data-event-id]", "els => els.map(e => e.dataset.eventId)")
    assert second and not set(first) & set(second)
    page.fill("input[name=text]", "zzzznotaword")
    page.press("input[name=text]", "Enter")
    page.wait_for_function("() => document.querySelector(\"[data-panel='events']\").dataset.state === 'empty'")
    assert not page.problems, page.problems


def test_an_alert_appears_and_links_to_its_events(page, stack, artifacts):
    firing = stack.alerts[0]
    open_page(page, stack, "alerts")
    row = page.locator(f"[data-panel='alerts-firing'] tr[data-alert-id='{firing['id']}']")
    assert row.count() == 1 and firing["key"] in row.inner_text()
    assert page.locator("[data-panel='alerts-history'] tr[data-alert-id]").count() == 2
    row.click()
    page.wait_for_function(f"() => document.querySelector(\"[data-panel='alert-detail']\").dataset.alertId === '{firing['id']}'")
    assert "payment_failures_same_provider" in page.inner_text("[data-panel='alert-detail']")
    page.screenshot(path=str(artifacts / "alert.png"), full_page=True)
    page.click("a.events-link")
    page.wait_for_url("**/ui/#/logs?*")
    page.wait_for_function("() => document.querySelector(\"[data-panel='events']\").dataset.state === 'ready'")
    shown = page.eval_on_selector_all("[data-panel='events'] tr[data-event-id]", "els => els.map(e => e.dataset.eventId)")
    assert sorted(shown) == sorted(json.loads(firing["evidence"])["event_ids"])
    assert not page.problems, page.problems


def test_auto_refresh_updates_without_reload_and_pauses(page, stack):
    page.goto(f"{stack.url}/ui/#/overview?range=15m&refresh=1")
    page.wait_for_function(SETTLED)
    page.evaluate("window.__same_document = true")
    first = int(page.evaluate("document.body.dataset.refreshed"))
    page.wait_for_function(f"() => Number(document.body.dataset.refreshed) >= {first + 2}", timeout=15_000)
    assert page.evaluate("window.__same_document") is True  # no reload happened
    page.click("button.pause")
    page.wait_for_function("() => !document.body.dataset.loading")
    paused_at = int(page.evaluate("document.body.dataset.refreshed"))
    page.wait_for_timeout(2500)
    assert int(page.evaluate("document.body.dataset.refreshed")) == paused_at
    assert not page.problems, page.problems


def test_empty_and_error_states(page, stack):
    open_page(page, stack, "business", start="2020-01-01T00:00:00Z", end="2020-01-01T01:00:00Z")
    assert panel_states(page)["transactions"] == "empty"
    page.route("**/perf/resources*", lambda route: route.fulfill(status=503, content_type="application/json",
                                                                  body='{"error": "the store could not answer"}'))
    page.goto(f"{stack.url}/ui/#/performance?start={stack.start}&end={stack.end}")
    page.wait_for_function("() => document.querySelector(\"[data-panel='cpu']\").dataset.state === 'error'")
    assert "the store could not answer" in page.inner_text("[data-panel='cpu']")
    assert "503" in page.inner_text("[data-panel='cpu']")
    # the failed request shows in the console as a resource error: the only one allowed here
    assert all("503" in p for p in page.problems), page.problems


def test_signing_in_and_out_through_the_page(browser, stack, artifacts):
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{stack.url}/ui/#/business?start={stack.start}&end={stack.end}")
    page.wait_for_selector(".login-box input[name=token]")
    assert page.locator("[data-panel]").count() == 0  # no panel asks for data before signing in
    page.screenshot(path=str(artifacts / "login.png"))
    page.fill("input[name=token]", "flt_0000000000000000_wrong")
    page.click(".login-box button[type=submit]")
    page.wait_for_selector(".login-box .bad-text:has-text('not valid')")
    page.fill("input[name=token]", stack.token)
    page.click(".login-box button[type=submit]")
    page.wait_for_function(SETTLED)
    assert page.locator("[data-panel='transactions']").get_attribute("data-state") == "ready"
    assert "ui-tests" in page.inner_text(".who")
    page.click(".who button")
    page.wait_for_selector(".login-box", state="visible")
    assert context.request.get(f"{stack.url}/business").status == 401  # the cookie is gone
    assert not errors, errors
    context.close()


def test_an_injected_scenario_raises_an_alert_that_the_alerts_page_shows(page, stack):
    """The real detector on the stack's MQ (only its error_log rule, so the backlog's scenarios stay out of the
    other tests' way); the simulator injects a service crash; the alert shows on the alerts page."""
    import threading
    import time

    from fleetlens.detect.config import RulesConfig
    from fleetlens.detect.runner import Detector
    from fleetlens.simulate.config import SimulationConfig
    from fleetlens.simulate.generator import format_ts
    from fleetlens.simulate.runner import run_simulation
    from fleetlens.simulate.scenarios import ScenarioSpec
    from fleetlens.sources.factory import open_sink

    rules = RulesConfig()
    for name in type(rules).model_fields:
        rule = getattr(rules, name)
        if hasattr(rule, "enabled"):
            rule.enabled = name == "error_log"
    settings = stack.settings.model_copy(update={"detect": stack.settings.detect.model_copy(
        update={"group": "ui-detect", "replay": False, "alerts_stream": None})})
    detector = Detector(settings, stack.store, rules)
    stop = threading.Event()
    runner = threading.Thread(target=detector.run, args=(stop,), daemon=True)
    runner.start()
    sink = open_sink(settings)
    try:
        now_ms = int(time.time() * 1000)
        run_simulation(SimulationConfig(seed=21, rate=200, users=50, start_ms=now_ms, duration_s=6, events_per_message=10,
                                        scenarios=(ScenarioSpec.parse("service_crash:payment@1+1"),)),
                       sink, stream=settings.streams[0])
        deadline = time.monotonic() + 60
        found = []
        while not found and time.monotonic() < deadline:
            found = [a for a in stack.get("/anomalies", rule="error_log", key="payment", start=stack.start,
                                          end=format_ts(now_ms + 60_000))["alerts"]
                     if a["key"] == "payment" and a["rule"] == "error_log"]
            time.sleep(0.5)
        assert len(found) == 1, found
        open_page(page, stack, "alerts", end=format_ts(now_ms // 60_000 * 60_000 + 120_000))
        row = page.locator(f"tr[data-alert-id='{found[0]['id']}']").first
        row.wait_for(timeout=20_000)
        assert "error_log" in row.inner_text() and "payment" in row.inner_text()
        assert not page.problems, page.problems
    finally:
        stop.set()
        runner.join(30)
        sink.close()


def test_api_docs_are_served_from_the_package_not_a_cdn(page, stack):
    """/docs: Swagger UI vendored from npm, under the same strict CSP as the dashboard."""
    page.goto(f"{stack.url}/docs")
    page.wait_for_selector(".swagger-ui .information-container .title", timeout=20_000)
    assert "fleetlens query API" in page.inner_text(".swagger-ui .information-container .title")
    page.wait_for_selector(".opblock-summary-path[data-path='/anomalies']", timeout=20_000)
    assert not page.problems, page.problems  # no console error (e.g. a CSP violation), nothing fetched elsewhere
