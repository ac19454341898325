"""The console in headless Chromium (Debian's chromium + chromedriver, driven by Selenium) against
a running Service: a drill drives a site to red through Mosquitto; the map shows it red within
2 s and the alert appears; the officer acknowledges, stands down and silences from the page,
and the manager records each. Screenshots land in test-artifacts/."""
import shutil
import time
from pathlib import Path

import pytest
from selenium import webdriver  # the test extra: `make test` installs it
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from console_fixtures import (TOKEN, accelerating_crack, publish_readings, rain_last_hour, running_service,
                              s2_complete)
from helpers import wait_until
from alert_fixtures import publish_accelerating_slope


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
VISIBLE_WITHIN_S = 2.0  # the issue: a level change shows within 2 s


@pytest.fixture
def browser(tmp_path):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("chromium and chromium-driver are needed: `make system-deps` installs them")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    opts.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})  # script errors fail the test
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1000", f"--user-data-dir={tmp_path / 'chromium'}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=DriverService(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def _css(driver, selector, timeout=10.0):
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, selector)))


def _retry(driver, action, timeout=10.0):
    """Live updates re-render the page: an element found a moment ago may be gone; look again."""
    return WebDriverWait(driver, timeout, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,)
                         ).until(lambda d: action(d) or False)


def _text(driver, selector):
    return _retry(driver, lambda d: d.find_element(By.CSS_SELECTOR, selector).text)


def _click(driver, selector):
    return _retry(driver, lambda d: d.find_element(By.CSS_SELECTOR, selector).click() or True)


def _type(driver, selector, text):
    return _retry(driver, lambda d: d.find_element(By.CSS_SELECTOR, selector).send_keys(text) or True)


def _screenshot(driver, name):
    ARTIFACTS.mkdir(exist_ok=True)
    # the whole page, not just the window: the alert list runs below the fold
    height = driver.execute_script("return document.documentElement.scrollHeight")
    width = driver.get_window_size()["width"]
    driver.set_window_size(width, max(600, height + 120))
    driver.save_screenshot(str(ARTIFACTS / name))


def test_drill_to_red_then_acknowledge_stand_down_and_silence_from_the_page(tmp_path, mosquitto, monkeypatch,
                                                                            browser):
    monkeypatch.setenv("GEOWARN_HTTP_TOKEN", TOKEN)
    with running_service(tmp_path, mosquitto.url, drill=True) as svc:
        mgr = svc.alerts.manager
        browser.get(f"http://127.0.0.1:{svc.http.port}/")
        # without a token the page asks for one; entered once, it is kept in localStorage
        _css(browser, "#settings:not([hidden])")
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "operator").send_keys("张值班")
        browser.find_element(By.ID, "save-settings").click()
        _css(browser, 'circle.site[data-site="S1"][data-level="normal"]')
        _css(browser, "#live.on")
        assert browser.find_element(By.CSS_SELECTOR, ".brand").text == "地质灾害监测预警 · 值班台"

        publish_accelerating_slope(svc.config.registry, mosquitto.url)
        assert wait_until(lambda: svc.core.site_levels().get("S1") == "red", 30, every=0.01)
        red_at = time.monotonic()
        _css(browser, 'circle.site[data-site="S1"][data-level="red"]', timeout=VISIBLE_WITHIN_S)
        assert time.monotonic() - red_at <= VISIBLE_WITHIN_S
        hazard = next(a for a in mgr.alerts() if a.kind == "hazard" and a.site == "S1")
        item = f'li.alert[data-alert="{hazard.id}"]'
        _css(browser, f'{item}[data-level="red"][data-acked="0"]')
        assert "测试1号滑坡" in _text(browser, item) and hazard.reasons[0] in _text(browser, item)
        assert hazard.drill and "演练" in _text(browser, item)  # a drill says so wherever it shows
        assert _text(browser, '.count[data-level="red"] b') == "1"
        assert "[object Object]" not in _text(browser, "body") and "undefined" not in _text(browser, "body")
        _screenshot(browser, "console-overview.png")

        _click(browser, f"{item} button.ack")
        _css(browser, f'{item}[data-acked="1"]')
        assert "张值班" in _text(browser, item)
        alert, history = mgr.get(hazard.id)
        assert (alert.acked_by, alert.acked_via) == ("张值班", "http")
        assert any(h["event"] == "acked" and h["who"] == "张值班" for h in history)

        # the site page: plots, device health, notification log
        _click(browser, '#sites a[href="#/site/S1"]')
        _css(browser, '#site-head[data-site="S1"][data-level="red"]')
        _css(browser, '.plot[data-series="S1-CRACK:width"] canvas')
        _css(browser, '#devices tr[data-device="S1-ALARM"]')
        assert wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#notifications tr[data-outbox]"), 10)
        # a longer window on demand: asks the API for it
        _retry(browser, lambda d: Select(d.find_element(By.ID, "hours")).select_by_value("168") or True)
        assert _retry(browser, lambda d: d.find_element(By.ID, "window-h").text == "168")
        browser.set_window_size(1280, 1000)
        assert "[object Object]" not in _text(browser, "body") and "undefined" not in _text(browser, "body")
        _screenshot(browser, "console-site.png")

        # silence a device for maintenance from its row
        row = '#devices tr[data-device="S1-GNSS"]'
        _click(browser, f"{row} button.silence")
        _type(browser, f"{row} .silence-form input[name=reason]", "更换电池")
        _click(browser, f'{row} .silence-form button[type="submit"]')
        assert wait_until(lambda: mgr.db.query("SELECT who, reason, device FROM silences"), 10)
        assert tuple(mgr.db.query("SELECT who, reason, device FROM silences")[0]) == ("张值班", "更换电池", "S1-GNSS")

        # stand down with a reason: the alert closes, audited with who and why
        _click(browser, f"{item} button.stand-down")
        _type(browser, f"{item} input.reason", "现场核查：演练结束")
        _click(browser, f'{item} .stand-down-form button[type="submit"]')
        assert wait_until(lambda: mgr.get(hazard.id)[0].status == "closed", 10)
        alert, history = mgr.get(hazard.id)
        assert (alert.close_reason, alert.closed_by) == ("stood_down", "张值班")
        assert any(h["event"] == "stood_down" and "演练结束" in str(h) for h in history)

        # another site accelerating towards failure in the rain: forecast and rain bars
        now = time.time()
        publish_readings(svc, mosquitto.url, "S2-CRACK", accelerating_crack(now, 10.0))
        publish_readings(svc, mosquitto.url, "S2-RAIN", rain_last_hour(now, 5.0))
        assert wait_until(lambda: s2_complete(svc), 15)
        browser.get(f"http://127.0.0.1:{svc.http.port}/console/#/site/S2")
        _css(browser, '.plot[data-series="S2-RAIN:mm"] canvas')
        _css(browser, '.plot[data-series="S2-CRACK:width"] .forecast')
        assert "30" in _text(browser, '.plot[data-series="S2-RAIN:mm"] tr[data-window="1"]')
        _screenshot(browser, "console-site-forecast-rain.png")

        # English on demand (every word the Chinese interface has), and a phone-sized overview
        assert browser.execute_script("return Object.keys(I18N.zh).filter(k => !(k in I18N.en))") == []
        browser.find_element(By.ID, "lang").click()
        _css(browser, "#lang")
        assert _text(browser, ".brand").startswith("Geohazard early warning")
        browser.get(f"http://127.0.0.1:{svc.http.port}/console/#/")
        browser.set_window_size(390, 844)
        _css(browser, 'circle.site[data-site="S1"]')
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        assert "[object Object]" not in _text(browser, "body") and "undefined" not in _text(browser, "body")
        _screenshot(browser, "console-overview-phone-en.png")
        # the only errors allowed: the first requests, refused before the token was entered
        errors = [e["message"] for e in browser.get_log("browser") if "status of 401" not in e["message"]]
        assert errors == []
