/* coverage15 interactive coverage map (MIT).
 * Needs Leaflet 1.9, Leaflet.markercluster 1.5 and leaflet-search (all inlined by coverage15).
 * coverage15Map(map, groups, data) draws the run's data into the folium feature groups and
 * exposes window.__c15 for tests and for planners who want to script the page.
 *
 * Every text in data (names of 街镇, districts and facilities come from OpenStreetMap and
 * colleagues' files; labels from the config) is shown as text: put into the page with
 * textContent, or through esc() where Leaflet takes HTML (popups, tooltips, icons). Only
 * data.legend and data.attribution are HTML, written (and escaped) by coverage15 itself.
 */
(function () {
  "use strict";

  var PANES = ["c15-units", "c15-areas", "c15-districts", "c15-selected", "c15-labels",
               "c15-facilities"];

  // keep popups clear of the title (top) and the legend (bottom left)
  var POPUP = {maxWidth: 420, maxHeight: 420, autoPanPaddingTopLeft: L.point(20, 80),
               autoPanPaddingBottomRight: L.point(20, 20)};

  function esc(value) {
    return String(value === null || value === undefined ? "" : value)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  // one suggestion of the 街镇 search, its text as text (the plugin's own would be HTML)
  function searchTip(text) {
    var li = L.DomUtil.create("li", "");
    li.textContent = text;
    return li;
  }

  function addPanes(map) {
    PANES.forEach(function (name, i) {
      if (!map.getPane(name)) {
        map.createPane(name).style.zIndex = String(410 + 10 * i);
      }
    });
    // flag labels above the facility clusters (markerPane, 600): they matter most
    map.getPane("c15-labels").style.zIndex = "620";
    // clusters of facilities (markerPane is 600), then the centres (the "1" of 1+N) above
    // every other layer's clusters and markers, clustered or not; labels (620) above all
    [["c15-clusters", "600"], ["c15-clusters-top", "610"], ["c15-facilities-top", "612"]]
      .forEach(function (pane) {
        if (!map.getPane(pane[0])) {
          map.createPane(pane[0]).style.zIndex = pane[1];
        }
      });
  }

  function unitPopup(props, columns) {
    var rows = [];
    var notes = [];
    props.row.forEach(function (value, i) {
      var column = columns[i];
      if (column.key === "reason_zh" || column.key === "reason") {
        notes.push("<div class=\"c15-reason\"><b>" + esc(column.label) + "：</b>" + esc(value) +
                   "</div>");
        return;
      }
      var cls = column.bad !== null && value === column.bad ? " class=\"c15-bad\"" : "";
      rows.push("<tr" + cls + "><th>" + esc(column.label) + "</th><td>" + esc(value) +
                "</td></tr>");
    });
    var head = "<div class=\"c15-popup-title\">" + esc(props.name) + " <small>" +
      esc(props.district) + "</small>" +
      (props.flag ? " <span class=\"c15-badge\">未达标</span>" : "") + "</div>";
    return head + "<table class=\"c15-popup\">" + rows.join("") + "</table>" + notes.join("");
  }

  function facilityPopup(row, layer, text) {
    // row: [lat, lon, name, jiezhen, district, snap_m, reach_m, area_index, area_km2]
    var lines = ["<div class=\"c15-popup-title\">" + esc(row[2]) + "</div>",
                 "<div class=\"c15-fac-type\" style=\"border-color:" + layer.colour + "\">" +
                 esc(layer.label) + "</div>"];
    if (row[3]) {
      lines.push(esc(text.unit) + "：" + esc(row[3]) + (row[4] ? "（" + esc(row[4]) + "）" : ""));
    }
    if (row[7] >= 0) {
      lines.push(esc(text.snap) + "：" + Math.round(row[5]) + " m");
      lines.push(esc(text.reach) + "：" + (row[6] / 1000).toFixed(1) + " km");
      lines.push(esc(text.area) + "：" + row[8].toFixed(2) + " km²");
      lines.push("<span class=\"c15-hint\">" + esc(text.areaShown) + "</span>");
    } else {
      lines.push("<span class=\"c15-hint\">" + esc(text.offNetwork) + "</span>");
    }
    return "<div class=\"c15-fac\"><div>" + lines.join("</div><div>") + "</div></div>";
  }

  function sitePopup(row, layer, site, text) {
    // a proposed site: its rank, place and what it changes, then the usual facts
    var lines = ["<div class=\"c15-popup-title\">拟建第 " + site.rank + " 处：" +
                 esc(site.place || row[2]) + "</div>"];
    if (site.newly) {
      lines.push("新覆盖居住点：" + esc(site.newly) + " 个");
    }
    if (site.effect) {
      lines.push("街镇覆盖率变化：" + esc(site.effect));
    }
    lines.push(site.passes ? "由此达标的街镇：" + esc(site.passes) :
               "<span class=\"c15-hint\">没有街镇因此处单独达标</span>");
    return "<div class=\"c15-fac c15-site-effect\"><div>" + lines.join("</div><div>") +
      "</div></div>" + facilityPopup(row, layer, text);
  }
  function siteIcon(colour, rank) {
    return L.divIcon({className: "c15-site", iconSize: [26, 26], iconAnchor: [13, 13],
                      html: "<div style=\"background:" + colour + ";color:" + textOn(colour) +
                        "\">" + rank + "</div>"});
  }
  // dark numbers on light colours (yellow, cyan, orange), white on dark ones
  function textOn(colour) {
    var rgb = [1, 3, 5].map(function (i) {
      var c = parseInt(colour.substr(i, 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var luminance = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
    return luminance > 0.22 ? "#1a1a1a" : "#fff";
  }

  function clusterIcon(colour) {
    var text = textOn(colour);
    return function (cluster) {
      var n = cluster.getChildCount();
      var size = n < 10 ? 26 : n < 100 ? 32 : 38;
      return L.divIcon({
        html: "<div style=\"background:" + colour + ";color:" + text + "\"><span>" + n +
          "</span></div>",
        className: "c15-cluster",
        iconSize: L.point(size, size)
      });
    };
  }

  function locatedPopup(row, layer) {
    // row: [lat, lon, layer key, name, named place, landed place, metres outside, action]
    var lines = ["<div class=\"c15-popup-title\">" + esc(row[3]) + "</div>",
                 "<div class=\"c15-fac-type\" style=\"border-color:" + layer.colour + "\">" +
                 esc(layer.label) + " · 位置存疑</div>",
                 "名称或区属所指：" + esc(row[4]),
                 "坐标落在：" + esc(row[5]) + (row[6] === null ? "" : "（在其外 " +
                   esc(row[6]) + " m）"),
                 "处理：" + esc(row[7]),
                 "<span class=\"c15-hint\">请核对其地址与坐标</span>"];
    return "<div class=\"c15-fac\"><div>" + lines.join("</div><div>") + "</div></div>";
  }

  function drawLocated(group, located) {
    // rows that land outside the place they name: a dashed ring where they landed
    var markers = [];
    located.rows.forEach(function (row) {
      var layer = located.layers[row[2]];
      var marker = L.circleMarker([row[0], row[1]], {
        radius: 9, color: layer.colour, weight: 2.5, dashArray: "4 3", fill: true,
        fillOpacity: 0, pane: "c15-facilities-top"
      });
      marker.bindTooltip(esc(row[3]) + "（位置存疑）");
      marker.bindPopup(locatedPopup(row, layer), POPUP);
      marker.addTo(group);
      markers.push(marker);
    });
    return markers;
  }

  window.coverage15Map = function (map, groups, overlays, data) {
    addPanes(map);
    L.control.scale({imperial: false, position: "bottomright"}).addTo(map);  // metres only
    if (map.options.maxZoom === undefined) {
      map.setMaxZoom(19);  // no tile layer sets one; marker clustering needs it
    }
    var state = {map: map, overlays: overlays, flagged: [], markers: {}, clusters: {},
                 pinned: null, data: data};
    window.__c15 = state;
    map.attributionControl.addAttribution(data.attribution);
    // a first view before any layer is drawn, with no zoom animation (refitted clear of the
    // legend and the layer list once they are on the map, below)
    map.fitBounds(data.bounds, {padding: [10, 10], animate: false});

    // the walking profile shown (data.profiles: the verdict's first); a 街镇's fill and flag
    // at that profile
    state.profile = data.profiles && data.profiles.length ? data.profiles[0].id : null;
    function shownAs(p) {
      var view = state.profile && p.profiles ? p.profiles[state.profile] : null;
      return view ? {fill: view[0], flag: view[1]} : {fill: p.fill, flag: p.flag};
    }

    // 街镇 coloured by coverage share; uncovered ones outlined in the flag colour
    var units = L.geoJSON(data.units, {
      pane: "c15-units",
      style: function (f) {
        var p = f.properties;
        var v = shownAs(p);
        return {
          fillColor: v.fill, fillOpacity: p.assessed ? 0.62 : 0.35,
          color: v.flag ? data.colours.flag : "#5a5a5a",
          weight: v.flag ? 3.5 : 0.8, opacity: 1,
          dashArray: v.flag ? null : "3 3",
          className: v.flag ? "c15-unit c15-flagged" : "c15-unit"
        };
      },
      onEachFeature: function (f, layer) {
        var p = f.properties;
        layer.bindPopup(unitPopup(p, data.columns), POPUP);
        layer.bindTooltip("<b>" + esc(p.name) + "</b> " + esc(p.district) + "<br>" +
                          esc(p.summary), {sticky: true, direction: "top"});
        layer.on("mouseover", function () {
          var flag = shownAs(p).flag;
          layer.setStyle({weight: flag ? 5 : 2.5, color: flag ? data.colours.flag : "#000"});
        });
        layer.on("mouseout", function () { units.resetStyle(layer); });
        if (p.flag) {
          state.flagged.push(p.name);
        }
      }
    }).addTo(groups.units);
    state.units = units;

    // labels of the flagged 街镇 (at the profile shown)
    function drawFlags() {
      groups.flags.clearLayers();
      data.units.features.forEach(function (f) {
        var p = f.properties;
        if (shownAs(p).flag && p.label_at) {
          L.marker(p.label_at, {
            pane: "c15-labels", interactive: false, keyboard: false,
            icon: L.divIcon({className: "c15-flag", iconSize: null,
                             html: "<span class=\"c15-flag-label\">⚠ " + esc(p.name) +
                                   "</span>"})
          }).addTo(groups.flags);
        }
      });
    }
    drawFlags();

    // each layer's service areas at the profile shown: the verdict profile's union, or the
    // layer's union at the other profile (null: it reaches nothing there)
    state.areas = {};
    function areasAt(layer) {
      if (state.profile && layer.unions && state.profile in layer.unions) {
        return layer.unions[state.profile];
      }
      return layer.union;
    }
    function drawAreas() {
      data.layers.forEach(function (layer) {
        var drawn = state.areas[layer.key];
        if (!drawn) {
          return;
        }
        drawn.clearLayers();
        var shape = areasAt(layer);
        if (shape) {
          drawn.addData(shape);
        }
      });
    }

    // switch the walking profile without another run: 街镇 colours and flags change, and
    // the service areas shrink (or grow) to the profile's speed
    if (data.profiles && data.profiles.length > 1) {
      var switcher = L.control({position: "topright"});
      switcher.onAdd = function () {
        var div = L.DomUtil.create("div", "c15-profile leaflet-bar");
        var select = L.DomUtil.create("select", "c15-profile-select", div);
        select.setAttribute("aria-label", "步行画像");
        data.profiles.forEach(function (profile) {
          var option = L.DomUtil.create("option", "", select);
          option.value = profile.id;
          option.textContent = "步速：" + profile.label;
        });
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.on(select, "change", function () {
          state.profile = select.value;
          units.setStyle(function (f) { return units.options.style(f); });
          drawFlags();
          drawAreas();
        });
        return div;
      };
      switcher.addTo(map);
    }

    if (data.districts) {
      L.geoJSON(data.districts, {
        pane: "c15-districts", interactive: false,
        style: {fill: false, color: "#1a1a1a", weight: 2.2, opacity: 0.9}
      }).addTo(groups.districts);
    }

    // the single facility's service area, shown on hover and pinned on click
    var selected = L.geoJSON(null, {
      pane: "c15-selected", interactive: false,
      style: {color: data.colours.selected, weight: 2.5, dashArray: "6 4",
              fillColor: "#ffffff", fillOpacity: 0.45, className: "c15-selected"}
    }).addTo(map);
    state.selected = selected;

    function show(layerIndex, row, pin) {
      if (pin) {
        state.pinned = row;
      } else if (state.pinned) {
        return;
      }
      selected.clearLayers();
      if (row[7] >= 0) {
        selected.addData(data.layers[layerIndex].areas[row[7]]);
      }
    }

    function hide(row, unpin) {
      if (unpin && state.pinned === row) {
        state.pinned = null;
      }
      if (!state.pinned) {
        selected.clearLayers();
      }
    }
    state.show = function (key, index, pin) {
      var i = data.layers.findIndex(function (l) { return l.key === key; });
      show(i, data.layers[i].facilities[index], pin !== false);
    };

    data.layers.forEach(function (layer, i) {
      var shape = areasAt(layer);
      state.areas[layer.key] = L.geoJSON(shape || null, {
        pane: "c15-areas", interactive: false,
        style: {color: layer.colour, weight: 1.3, opacity: 0.95, fillColor: layer.colour,
                fillOpacity: 0.12, className: "c15-area"}
      }).addTo(groups.areas[i]);
      if (layer.sites) {  // the proposed sites: numbered, never clustered, areas drawn
        var sites = [];
        layer.facilities.forEach(function (row, j) {
          var site = layer.sites[j];
          if (!site) {
            return;
          }
          if (row[7] >= 0) {
            L.geoJSON(layer.areas[row[7]], {
              pane: "c15-areas", interactive: false,
              style: {color: layer.colour, weight: 2, opacity: 1, dashArray: "5 3",
                      fillOpacity: 0, className: "c15-site-area"}
            }).addTo(groups.areas[i]);
          }
          var marker = L.marker([row[0], row[1]], {
            pane: "c15-facilities-top", icon: siteIcon(layer.colour, site.rank),
            title: "拟建第 " + site.rank + " 处", riseOnHover: true, zIndexOffset: 1000
          });
          marker.bindPopup(sitePopup(row, layer, site, data.text), POPUP);
          marker.bindTooltip(site.rank + ". " + esc(site.place || row[2]),
                             {direction: "top", offset: [0, -12]});
          marker.on("click", function () {
            marker.closeTooltip();
            show(i, row, true);
          });
          marker.on("popupclose", function () { hide(row, true); });
          marker.addTo(groups.markers[i]);
          sites.push(marker);
        });
        state.markers[layer.key] = sites;
        return;
      }
      var cluster = L.markerClusterGroup({
        disableClusteringAtZoom: 15, maxClusterRadius: 45, showCoverageOnHover: false,
        iconCreateFunction: clusterIcon(layer.colour),
        clusterPane: layer.top ? "c15-clusters-top" : "c15-clusters"
      });
      var markers = layer.facilities.map(function (row) {
        var onNetwork = row[7] >= 0;
        var marker = L.circleMarker([row[0], row[1]], {
          pane: layer.top ? "c15-facilities-top" : "c15-facilities",
          radius: onNetwork ? 6 : 5, color: onNetwork ? "#fff" : layer.colour,
          weight: onNetwork ? 1.5 : 2, fillColor: layer.colour,
          fillOpacity: onNetwork ? 1 : 0.15, className: "c15-facility"
        });
        marker.bindPopup(facilityPopup(row, layer, data.text), POPUP);
        marker.bindTooltip(esc(row[2]), {direction: "top", offset: [0, -6]});
        marker.on("mouseover", function () { show(i, row, false); });
        marker.on("mouseout", function () { hide(row, false); });
        marker.on("click", function () {
          marker.closeTooltip();
          show(i, row, true);
        });
        marker.on("popupclose", function () { hide(row, true); });
        return marker;
      });
      cluster.addLayers(markers);
      cluster.addTo(groups.markers[i]);
      state.markers[layer.key] = markers;
      state.clusters[layer.key] = cluster;
    });

    if (L.Control.Search) {
      var search = new L.Control.Search({
        layer: units, propertyName: "search", initial: false, marker: false,
        collapsed: false, position: "topleft", textPlaceholder: data.text.search,
        textErr: data.text.notFound, zoom: null, buildTip: searchTip,
        moveToLocation: function (latlng, title, m) {
          // no animation: the popup opened next can then pan itself into view
          m.fitBounds(latlng.layer.getBounds(), {maxZoom: 15, animate: false});
        }
      });
      search.on("search:locationfound", function (e) {
        if (!map.hasLayer(groups.units)) {
          map.addLayer(groups.units);
        }
        e.layer.openPopup();
      });
      map.addControl(search);
      state.search = search;
    }

    var title = L.DomUtil.create("div", "c15-title", map.getContainer());
    L.DomUtil.create("h1", "", title).textContent = data.title.heading;
    L.DomUtil.create("div", "", title).textContent = data.title.detail;
    L.DomEvent.disableClickPropagation(title);
    var legend = L.control({position: "bottomleft"});
    legend.onAdd = function () {
      var div = L.DomUtil.create("div", "c15-legend");
      div.innerHTML = "<button type=\"button\" class=\"c15-legend-toggle\">" +
        esc(data.text.legend) + "</button><div class=\"c15-legend-body\">" + data.legend +
        "</div>";
      L.DomEvent.on(div.firstChild, "click", function () {
        L.DomUtil[L.DomUtil.hasClass(div, "c15-legend-folded") ? "removeClass" : "addClass"](
          div, "c15-legend-folded");
      });
      // a small screen starts with the legend folded, so the map stays in sight
      if (window.innerWidth < 1000 || window.innerHeight < 650) {
        L.DomUtil.addClass(div, "c15-legend-folded");
      }
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      state.legend = div;
      return div;
    };
    legend.addTo(map);
    // the studied area clear of the open legend (left) and the open layer list (right),
    // where the map is wide enough for the three side by side
    var left = L.DomUtil.hasClass(state.legend, "c15-legend-folded") ? 0 :
      state.legend.offsetWidth;
    var list = map.getContainer().querySelector(".leaflet-control-layers-expanded");
    var right = list ? list.offsetWidth : 0;
    if (left + right > 0 && map.getSize().x - left - right >= 400) {
      map.fitBounds(data.bounds, {paddingTopLeft: [left + 20, 10],
                                  paddingBottomRight: [right + 20, 10], animate: false});
    }

    function thinLabels() {
      // a label that would overlap one already shown waits for a closer zoom (its 街镇
      // keeps its red outline and its tooltip); the first in the data wins
      var kept = [];
      var spans = map.getContainer().querySelectorAll(".c15-flag-label");
      state.thinned = [];
      Array.prototype.forEach.call(spans, function (span) {
        L.DomUtil.removeClass(span, "c15-thinned");
        var r = span.getBoundingClientRect();
        if (r.width === 0) {
          return;
        }
        var clash = kept.some(function (k) {
          return r.left < k.right + 3 && r.right > k.left - 3 && r.top < k.bottom + 2 &&
            r.bottom > k.top - 2;
        });
        if (clash) {
          L.DomUtil.addClass(span, "c15-thinned");
          state.thinned.push(span.textContent);
        } else {
          kept.push(r);
        }
      });
    }
    state.thinLabels = thinLabels;
    function labelsByZoom() {
      // flag labels need room: from zoom 13 on, and never on top of each other
      L.DomUtil[map.getZoom() < 13 ? "addClass" : "removeClass"](map.getContainer(),
                                                                  "c15-zoomed-out");
      thinLabels();
    }
    map.on("zoomend", labelsByZoom);
    map.on("overlayadd", thinLabels);
    labelsByZoom();
    state.located = [];
    (data.located || []).forEach(function (located, i) {
      state.located.push(drawLocated(groups.located[i], located));
      // a legend row: the overlay is off at start, its name says how many
      var row = L.DomUtil.create("div", "row", state.legend.querySelector(".c15-legend-body"));
      var ring = L.DomUtil.create("span", "sw", row);
      ring.style.border = "2px dashed #555";
      ring.style.borderRadius = "50%";
      row.appendChild(document.createTextNode(
        "坐标与名称或区属不符的" + located.what + "：" + located.rows.length + " 处（图层“" +
        located.overlay + "”）"));
    });
    state.ready = true;
    return state;
  };
})();
