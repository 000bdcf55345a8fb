"""Screenshot a coverage15 ``map.html`` in headless Chromium (for the README).

Usage::

    coverage15 run data/shanghai-central.toml --out /tmp/central --tiles none
    python tools/map_screenshot.py /tmp/central/map.html docs/map-central.png

Needs Debian's ``chromium`` and ``chromium-driver`` and ``selenium`` (the ``test`` extra).
Works offline: the map inlines Leaflet. The PNG is reduced to 256 colours to stay small.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--lang=zh-CN")


def screenshot(html: Path, png: Path, *, width: int = 1400, height: int = 1000,
               colours: int = 256) -> Path:
    """Open ``html`` from disk, wait for the map, and write a palette PNG to ``png``."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        sys.exit("needs chromium and chromedriver (apt-get install chromium chromium-driver)")
    options = Options()
    options.binary_location = chromium
    for flag in (*FLAGS, f"--window-size={width},{height}"):
        options.add_argument(flag)
    with tempfile.TemporaryDirectory() as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        try:
            driver.get(html.resolve().as_uri())
            WebDriverWait(driver, 30).until(lambda d: d.execute_script(
                "return !!(window.__c15 && window.__c15.ready)"))
            errors = driver.execute_script("return window.__c15_errors || []")
            if errors:
                sys.exit(f"JavaScript errors: {errors}")
            raw = driver.get_screenshot_as_png()
        finally:
            driver.quit()
    image = Image.open(io.BytesIO(raw)).convert("RGB")
    image = image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=0)
    png.parent.mkdir(parents=True, exist_ok=True)
    image.save(png, optimize=True)
    return png


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args()
    out = screenshot(args.html, args.png, width=args.width, height=args.height)
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
