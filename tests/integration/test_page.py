#!/usr/bin/python3
"""End-to-end test of the web page at GET / in headless Chromium (Debian chromium, driven through
chromedriver with Debian's python3-selenium): load the page, search a track, open it, see genre
bars, a conformal set that follows the α slider, the popularity interval and similar tracks, then
click a similar track to walk on. Keeps a screenshot (meson-logs/page.png under the build)."""
import os
import shutil
import signal
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_http import check, start_server, test_arguments, train_small, with_music_genre, write_slices  # noqa: E402
import test_http  # noqa: E402


def main():
    a = test_arguments()
    return with_music_genre(a, "timbre-page-", lambda data, tmp: run(a, data, tmp))


SCREENSHOT = "meson-logs/page.png"  # under the build directory, where meson runs the test


def run(a, data, tmp):
    paths, header, _, catalog_row = write_slices(data, tmp)
    db = train_small(a, paths["train.csv"], tmp)
    server, port = start_server(a.server, db, tmp, ("--no-access-log",))
    check(port is not None, "server started")
    if port is None:
        return 1
    artist = catalog_row[header.index("artist_name")]
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=opts)
    try:
        wait = WebDriverWait(driver, 20)
        driver.get(f"http://127.0.0.1:{port}/")
        check(driver.title == "Timbre", f"page title {driver.title!r}")
        box = driver.find_element(By.ID, "q")
        box.send_keys(artist)
        driver.find_element(By.CSS_SELECTOR, "#search-form button").click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#results li.track")))
        results = driver.find_elements(By.CSS_SELECTOR, "#results li.track")
        check(any(artist.lower() in r.text.lower() for r in results), f"a result by {artist}")
        results[0].click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#genres .bar")))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#set .chip")))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#similar li.track")))
        wait.until(lambda d: "between" in d.find_element(By.ID, "popularity").text)
        bars = driver.find_elements(By.CSS_SELECTOR, "#genres .bar")
        check(len(bars) == 5, f"five genre bars, got {len(bars)}")
        # Why: the six largest contributions to the predicted genre, signed, as the route gives them.
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#why .bar")))
        why = driver.find_elements(By.CSS_SELECTOR, "#why .bar")
        top_genre = bars[0].find_element(By.CSS_SELECTOR, "span.name").text
        shown = [float(b.find_elements(By.CSS_SELECTOR, "span")[-1].text) for b in why]
        check(len(why) == 6 and driver.find_element(By.ID, "why-genre").text == top_genre
              and len(driver.find_elements(By.CSS_SELECTOR, "#why .fill.pos")) == sum(v >= 0 for v in shown)
              and [abs(v) for v in shown] == sorted((abs(v) for v in shown), reverse=True),
              f"why bars for {top_genre}: {shown}")
        check("90%" in driver.find_element(By.ID, "set-guarantee").text, "the set states its 90% guarantee")
        size_at_01 = len(driver.find_elements(By.CSS_SELECTOR, "#set .chip"))
        # Move the slider to α = 0.4: the guarantee text follows, and the set cannot grow.
        driver.execute_script("const s = document.getElementById('alpha'); s.value = '0.4';"
                              "s.dispatchEvent(new Event('change'));")
        wait.until(lambda d: "60%" in d.find_element(By.ID, "set-guarantee").text)
        size_at_04 = len(driver.find_elements(By.CSS_SELECTOR, "#set .chip"))
        check(1 <= size_at_04 <= size_at_01, f"set sizes at α 0.1 / 0.4: {size_at_01} / {size_at_04}")
        similar = driver.find_elements(By.CSS_SELECTOR, "#similar li.track")
        check(len(similar) == 10, f"ten similar tracks, got {len(similar)}")
        title_before = driver.find_element(By.ID, "track-title").text
        next_name = similar[0].find_element(By.TAG_NAME, "strong").text
        visited = {similar[0].get_attribute("data-id")}
        similar[0].click()
        wait.until(lambda d: d.find_element(By.ID, "track-title").text != title_before)
        check(driver.find_element(By.ID, "track-title").text.startswith(next_name), "walked to a similar track")
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#similar li.track")))
        # Rate five tracks, walking from each to its most similar: the taste panel then recommends.
        rated = []
        for i, rating in enumerate((9, 3, 8, 2, 7)):
            go = driver.find_element(By.ID, "taste-go")
            check(i == 0 or go.get_attribute("disabled") is not None, f"no recommendations after {i} ratings")
            driver.find_elements(By.CSS_SELECTOR, "#rate button")[rating - 1].click()
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#rate button.on"))
            rated.append(driver.find_element(By.ID, "track-title").text)
            before = driver.find_element(By.ID, "track-title").text
            nxt = next(li for li in driver.find_elements(By.CSS_SELECTOR, "#similar li.track")
                       if li.get_attribute("data-id") not in visited)
            visited.add(nxt.get_attribute("data-id"))
            nxt.click()
            wait.until(lambda d: d.find_element(By.ID, "track-title").text != before)
            wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#similar li.track")))
        check("5 tracks rated." in driver.find_element(By.ID, "taste-status").text, "five ratings counted")
        driver.find_element(By.ID, "taste-go").click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#taste-tracks li.track")))
        mine = driver.find_elements(By.CSS_SELECTOR, "#taste-tracks li.track")
        check(len(mine) == 10 and all("predicted" in m.text for m in mine), f"ten taste recommendations: {len(mine)}")
        check("cross-validated R²" in driver.find_element(By.ID, "taste-fit").text, "the fit's R² is shown")
        check(not any(m.text.startswith(title) for m in mine for title in rated), "rated tracks are not recommended")
        os.makedirs(os.path.dirname(os.path.abspath(SCREENSHOT)), exist_ok=True)
        check(driver.save_screenshot(SCREENSHOT), f"screenshot saved to {SCREENSHOT}")
        errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        check(not errors, f"no browser errors: {errors}")
    finally:
        driver.quit()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=15)
    print(f"{test_http.PASSED} passed, {test_http.FAILED} failed")
    return 1 if test_http.FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
