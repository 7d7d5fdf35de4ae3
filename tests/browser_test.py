"""Browser test: headless Chromium against `make demo`'s front end.

Run by `make test` inside tests/with-moto.sh. Starts the demo on a free port, then:
1. with JavaScript: opens a sleeping host, sees the progress page move through its phases, and
   lands on the backend's page with no reload by the test (the page's own poll does it);
2. a click-mode host: fetching its page wakes nothing; without JavaScript, Chromium presses its
   Wake button and the <meta refresh> fallback reaches the app;
3. a host behind sign-in: a request without a session wakes nothing; Chromium signs in at the
   demo IdP and the progress page names the demo user as the one who woke it.
Screenshots go to target/screenshots/. Prints a closing 'N passed, N failed' line.
"""
import os
import queue
import threading
import socket
import subprocess
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
import http.client
import json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHOTS = os.path.join(ROOT, "target", "screenshots")
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser(javascript):
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1100,900"):
        opts.add_argument(flag)
    if not javascript:
        opts.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def fetch(port, host, path, accept):
    """A GET as a link unfurler or prefetcher makes it: no cookies, no click."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Host": f"{host}:{port}", "Accept": accept})
    r = conn.getresponse()
    return r.status, r.read().decode()


def header_names(port, host, path):
    """The names of the response's headers, in order, repeats kept."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Host": f"{host}:{port}", "Accept": "text/html"})
    r = conn.getresponse()
    r.read()
    return [k.lower() for k, _ in r.getheaders()]


def visit(port, host, javascript, expect, click=False, sign_in=False, seen=None):
    """Opens a sleeping host once (pressing its Wake button if `click`, signing in at the demo IdP
    if `sign_in`) and waits, recording the phases the page shows (and into `seen`, who it says
    woke it), until the app's page is there. Returns (phases, title, source)."""
    driver = browser(javascript)
    phases, shot = [], False
    try:
        driver.get(f"http://{host}:{port}/")
        if sign_in:
            driver.find_element(By.ID, "sign-in").click()
        if click:
            driver.find_element(By.ID, "wake").click()

        def arrived(d):
            nonlocal shot
            try:
                src = d.page_source
                if "Waking" in d.title:
                    current = src.split('class="current" data-phase="', 1)
                    if len(current) == 2:
                        phase = current[1].split('"', 1)[0]
                        if not phases or phases[-1] != phase:
                            phases.append(phase)
                    who = src.split('id="woken-by-name">', 1)
                    if seen is not None and len(who) == 2 and who[1].split("<", 1)[0]:
                        seen.add(who[1].split("<", 1)[0])
                    if not shot:
                        os.makedirs(SHOTS, exist_ok=True)
                        d.save_screenshot(os.path.join(SHOTS, f"progress-{host.split('.')[0]}-{'js' if javascript else 'nojs'}.png"))
                        shot = True
                return expect in src
            except Exception:
                return False  # the page is mid-reload

        WebDriverWait(driver, 90, poll_frequency=0.2).until(arrived)
        driver.save_screenshot(os.path.join(SHOTS, f"app-{host.split('.')[0]}-{'js' if javascript else 'nojs'}.png"))
        return phases, driver.title, driver.page_source
    finally:
        driver.quit()


def main():
    port = free_port()
    env = dict(os.environ, DEMO_PORT=str(port), DEMO_IDLE_CHECK_SECONDS="3600")
    demo = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "demo", "demo.py")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    # A thread drains the demo's output for the whole run: waiting for "ready" has a deadline even
    # if the demo goes silent, and a chatty demo never blocks on a full pipe.
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in demo.stdout] and None, daemon=True).start()
    try:
        deadline = time.time() + 60
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                if demo.poll() is not None:
                    raise RuntimeError(f"demo exited with {demo.returncode} before it was ready")
                if time.time() > deadline:
                    raise RuntimeError("demo did not say it was ready within 60 s")
                continue
            if "autostop demo ready" in line:
                break

        phases, title, src = visit(port, "api.localhost", True, "Hello from api")
        check("JS: the progress page showed while waking", phases, phases)
        check("JS: the database dependency was readied first", phases and phases[0] == "dependency", phases)
        check("JS: it showed the boot and the health checks",
              "starting" in phases and "waiting_for_health" in phases, phases)
        check("JS: landed on the app with no manual reload", title == "api is awake" and "Hello from api" in src, title)
        names = header_names(port, "api.localhost", "/")
        check("the front end passes the app's Server and Date on, once each",
              names.count("server") == 1 and names.count("date") == 1, names)
        names = header_names(port, "nobody.localhost", "/")
        check("autostop's own answers get one Server and one Date",
              names.count("server") == 1 and names.count("date") == 1, names)

        status, page = fetch(port, "web.localhost", "/", "text/html")
        check("click: a fetch of the page gets the Wake button", status == 200 and 'id="wake"' in page, status)
        _, report = fetch(port, "web.localhost", "/__autostop/status", "application/json")
        check("click: the fetch woke nothing", json.loads(report)["phase"] == "stopped", report)
        phases, title, src = visit(port, "web.localhost", False, "Hello from web", click=True)
        check("click: pressing Wake showed the progress page", phases, phases)
        check("click, no JS: the meta refresh reached the app", title == "web is awake" and "Hello from web" in src, title)
        status, page = fetch(port, "admin.localhost", "/__autostop/status", "application/json")
        check("sign-in: a request without a session is sent to sign in", status == 302, (status, page))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/__autostop/status", headers={"Host": "admin.localhost", "Accept": "application/json",
                                                             "x-amzn-oidc-data": "forged.token.here"})
        forged = conn.getresponse()
        forged.read()
        check("sign-in: a forged header does not get through the front end", forged.status == 302, forged.status)
        seen = set()
        phases, title, src = visit(port, "admin.localhost", True, "Hello from admin", sign_in=True, seen=seen)
        check("sign-in: after signing in, the progress page showed", phases, phases)
        check("sign-in: it names the demo user as who woke it", seen == {"dev@demo.example.com"}, seen)
        check("sign-in: landed on the app", title == "admin is awake" and "Hello from admin" in src, title)
        driver = browser(True)
        try:
            driver.get(f"http://autostop.localhost:{port}/")
            driver.find_element(By.ID, "sign-in").click()
            WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "fleet"))
            rows = [r.get_attribute("data-rule") for r in driver.find_elements(By.CSS_SELECTOR, "#rules tbody tr")]
            check("fleet: the page lists every rule", sorted(rows) == ["admin", "api", "db", "web"], rows)
            bars = driver.find_elements(By.CSS_SELECTOR, "#chart svg rect")
            check("fleet: the 30-day chart is drawn", len(bars) == 60, len(bars))
            check("fleet: it names the viewer", driver.find_element(By.ID, "user").text == "dev@demo.example.com",
                  driver.find_element(By.ID, "user").text)
            driver.find_element(By.ID, "keep-awake-web").click()
            WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "notice"))
            intent = driver.find_element(By.CSS_SELECTOR, 'tr[data-rule="web"] .intent').text
            check("fleet: Keep awake shows the override with the demo user's name",
                  "kept awake by dev@demo.example.com" in intent, intent)
            check("fleet: the answer was a redirect back to the page", driver.current_url.endswith("&ok=1"),
                  driver.current_url)
            driver.set_window_size(1500, 1000)
            driver.save_screenshot(os.path.join(SHOTS, "fleet.png"))
        finally:
            driver.quit()
        check("screenshots saved", os.path.exists(os.path.join(SHOTS, "progress-api-js.png")), os.listdir(SHOTS))
    finally:
        demo.terminate()
        try:
            demo.wait(timeout=15)
        except subprocess.TimeoutExpired:
            demo.kill()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:
        check("browser test ran to the end", False, repr(e))
    passed, failed = results.count(True), results.count(False)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)
