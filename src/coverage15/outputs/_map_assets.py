"""JavaScript and CSS of the interactive map: vendored, inlined, or linked from a CDN.

folium links Leaflet, jQuery, Bootstrap and its plugins from CDNs, so its maps are blank
without internet. :func:`use_assets` removes those links from a map and puts the few files the
coverage15 map needs (Leaflet, Leaflet.markercluster, leaflet-search and our own script) into
the page header: inline by default, so a saved ``map.html`` works from disk offline, or as CDN
links of the same versions. The vendored files live in ``coverage15/_static`` with their
licences (see the README there). :func:`check_tiles` tells whether folium can draw a basemap.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import folium
from branca.element import Element, Figure

from coverage15._errors import ConfigError

__all__ = ["ASSETS", "Asset", "AssetMode", "RawHTML", "check_tiles", "read_static", "use_assets"]

AssetMode = Literal["inline", "cdn"]

_ERROR_HOOK = """<script>
window.__c15_errors = [];
window.addEventListener("error", function (e) {
  window.__c15_errors.push(String(e.message) + " (" + (e.filename || "?") + ":" + e.lineno + ")");
});
window.addEventListener("unhandledrejection", function (e) {
  window.__c15_errors.push("unhandled rejection: " + String(e.reason));
});
</script>"""

_MIME = {".png": "image/png", ".gif": "image/gif", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class Asset:
    """One vendored file.

    Attributes
    ----------
    path : str
        Path inside ``coverage15/_static``.
    cdn : str or None
        The same file on a CDN (None for this project's own files, always inlined).
    """

    path: str
    cdn: str | None

    @property
    def kind(self) -> Literal["js", "css"]:
        """``"js"`` or ``"css"``, from the file name."""
        return "js" if self.path.endswith(".js") else "css"


_JSDELIVR = "https://cdn.jsdelivr.net/npm"
ASSETS: tuple[Asset, ...] = (
    Asset("leaflet/dist/leaflet.css", f"{_JSDELIVR}/leaflet@1.9.4/dist/leaflet.css"),
    Asset("leaflet.markercluster/dist/MarkerCluster.css",
          f"{_JSDELIVR}/leaflet.markercluster@1.5.3/dist/MarkerCluster.css"),
    Asset("leaflet.markercluster/dist/MarkerCluster.Default.css",
          f"{_JSDELIVR}/leaflet.markercluster@1.5.3/dist/MarkerCluster.Default.css"),
    Asset("leaflet-search/dist/leaflet-search.min.css",
          f"{_JSDELIVR}/leaflet-search@4.0.0/dist/leaflet-search.min.css"),
    Asset("coverage15-map.css", None),
    Asset("leaflet/dist/leaflet.js", f"{_JSDELIVR}/leaflet@1.9.4/dist/leaflet.js"),
    Asset("leaflet.markercluster/dist/leaflet.markercluster.js",
          f"{_JSDELIVR}/leaflet.markercluster@1.5.3/dist/leaflet.markercluster.js"),
    Asset("leaflet-search/dist/leaflet-search.min.js",
          f"{_JSDELIVR}/leaflet-search@4.0.0/dist/leaflet-search.min.js"),
    Asset("coverage15-map.js", None),
)


def read_static(path: str) -> bytes:
    """Bytes of a file in ``coverage15/_static``."""
    return resources.files("coverage15").joinpath("_static", path).read_bytes()


def _inline_css(asset: Asset) -> str:
    """CSS text with relative ``url(...)`` images turned into ``data:`` URIs."""
    text = read_static(asset.path).decode("utf-8")
    folder = asset.path.rsplit("/", 1)[0] if "/" in asset.path else ""

    def data_uri(match: re.Match[str]) -> str:
        ref = match.group(1).strip("'\"")
        if ref.startswith(("data:", "#", "http:", "https:")):
            return match.group(0)
        parts = [p for p in f"{folder}/{ref}".split("/") if p]
        resolved: list[str] = []
        for part in parts:
            if part == "..":
                resolved.pop()
            elif part != ".":
                resolved.append(part)
        target = "/".join(resolved)
        mime = _MIME.get(target[target.rfind("."):], "application/octet-stream")
        encoded = base64.b64encode(read_static(target)).decode("ascii")
        return f"url(data:{mime};base64,{encoded})"

    return re.sub(r"url\(([^)]+)\)", data_uri, text)


def _inline_js(asset: Asset) -> str:
    text = read_static(asset.path).decode("utf-8")
    text = re.sub(r"^//# sourceMappingURL=.*$", "", text, flags=re.MULTILINE)
    return text.replace("</script", "<\\/script")


class RawHTML(Element):
    """A header element rendered verbatim (no Jinja: vendored code may contain ``{%``)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def render(self, **kwargs: object) -> str:
        """Return the text as given."""
        return self._text


def _strip_links(element: Element) -> None:
    """Drop folium's own CDN links (jQuery, Bootstrap, Font Awesome...) from a tree."""
    if hasattr(element, "default_js"):
        element.default_js = []
    if hasattr(element, "default_css"):
        element.default_css = []
    for child in list(element._children.values()):
        _strip_links(child)


def use_assets(fmap: folium.Map, *, mode: AssetMode = "inline") -> None:
    """Replace folium's CDN links of a map by coverage15's assets.

    Parameters
    ----------
    fmap
        A finished map; elements added after this call may bring their own links back.
    mode
        ``"inline"`` puts every file's text into the page (works offline); ``"cdn"`` links
        Leaflet and its plugins from jsDelivr (smaller file, needs internet) and inlines only
        coverage15's own script and style.
    """
    _strip_links(fmap)
    root = fmap.get_root()
    assert isinstance(root, Figure)
    header = root.header
    # appended after folium's charset <meta>, which must stay in the first kilobyte
    header.add_child(RawHTML(_ERROR_HOOK), name="c15_error_hook")
    for asset in ASSETS:
        name = "c15_" + re.sub(r"\W", "_", asset.path)
        if mode == "cdn" and asset.cdn is not None:
            tag = (f'<script src="{asset.cdn}"></script>' if asset.kind == "js"
                   else f'<link rel="stylesheet" href="{asset.cdn}"/>')
        elif asset.kind == "js":
            tag = f"<script>\n{_inline_js(asset)}\n</script>"
        else:
            tag = f"<style>\n{_inline_css(asset)}\n</style>"
        header.add_child(RawHTML(tag), name=name)


def check_tiles(tiles: str | None, attribution: str | None = None) -> None:
    """Raise :class:`ConfigError` if folium cannot draw ``tiles`` (None: no basemap).

    A URL template needs its attribution; a name must be one folium or xyzservices knows
    (e.g. ``OpenStreetMap``, ``OpenStreetMap.HOT``, ``CartoDB.Positron``).
    """
    if tiles is None:
        return
    if "{" in tiles or tiles.startswith(("http://", "https://")):
        if not attribution:
            msg = (f"tiles {tiles!r}: a tile URL needs its attribution (--tiles-attribution, "
                   "or tiles_attribution in [map]); the provider's licence requires it")
            raise ConfigError(msg)
        return
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "CartoDB tiles now require an API key"
            folium.TileLayer(tiles)
    except ValueError as exc:
        import difflib

        import xyzservices

        names = list(xyzservices.providers.flatten())
        close = difflib.get_close_matches(tiles, names, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(repr(n) for n in close)}? " if close else ""
        msg = (f"tiles {tiles!r}: not a basemap name folium knows; {hint}use a name such as "
               "'OpenStreetMap', 'OpenStreetMap.HOT' or 'CartoDB.Positron', a URL template "
               "with its attribution, or 'none'")
        raise ConfigError(msg) from exc
