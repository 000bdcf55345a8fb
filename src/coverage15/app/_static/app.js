// coverage15 live what-if page. All text from data goes in with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const COLORS = { centre: "#d95f02", meal_point: "#1b9e77", canteen: "#7570b3" };
let base = null;
let state = null;
let unitsLayer = null;
let areasLayer = null;
let snapLayer = null;
const siteLayers = {};
let jobId = null;
let profileId = null;  // the walking profile shown: its shares and verdicts (verdict's first)

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function pct(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%"; }

async function api(path, options) {
  $("busy").textContent = "…";
  try {
    const r = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
    const body = await r.json().catch(() => ({ error: "HTTP " + r.status }));
    if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
    $("error").textContent = "";
    return body;
  } catch (e) {
    $("error").textContent = e.message;
    throw e;
  } finally {
    $("busy").textContent = "";
  }
}

const post = (path, data) => api(path, {
  method: "POST", headers: { "Content-Type": "application/json" },
  body: JSON.stringify(data || {}),
});

function layer() { return $("layer").value; }
function mode() { return document.querySelector("input[name=mode]:checked").value; }

// --- map -------------------------------------------------------------------------------------

const map = L.map("map", { preferCanvas: false });

function profile() {
  return base.profiles.find((p) => p.id === profileId) || { id: null, suffix: "", label: "" };
}

// the 街镇 row's verdict at the chosen profile (the API judges every profile)
function verdict(row, i) {
  const byProfile = state.profile_verdicts && state.profile_verdicts[profileId];
  const uncovered = byProfile ? byProfile[i] : row && row.uncovered;
  if (!row || uncovered === null || uncovered === undefined) return "na";
  return uncovered ? "fail" : "pass";
}

function styleUnits() {
  if (!unitsLayer || !state) return;
  const at = new Map(state.gap_report.map((r, i) => [r.district + "|" + r.jiezhen, i]));
  unitsLayer.eachLayer((l) => {
    const p = l.feature.properties;
    const i = at.get(p.district + "|" + p.jiezhen);
    const v = i === undefined ? "na" : verdict(state.gap_report[i], i);
    const fill = { fail: "#d7301f", pass: "#1a9850", na: "#bbbbbb" }[v];
    l.setStyle({ color: "#555", weight: 1, fillColor: fill, fillOpacity: 0.25 });
  });
}

function unitTooltip(feature, l) {
  l.bindTooltip(() => {
    const p = feature.properties;
    const row = state && state.gap_report.find((r) => r.jiezhen === p.jiezhen
      && r.district === p.district);
    const box = el("div");
    box.appendChild(el("b", p.jiezhen));
    box.appendChild(el("div", p.district));
    if (row) box.appendChild(el("div", layerLabel() + " " + pct(row[layer() + "_demand_share"])));
    if (row) {
      for (const rid of base.walking_rules) {
        box.appendChild(el("div", rid + " (" + profile().label + ") "
          + pct(row[rid + "_share" + profile().suffix])));
      }
    }
    return box;
  }, { sticky: true });
}

function layerLabel() {
  const found = base.layers.find((l) => l.key === layer());
  return found ? found.label : layer();
}

function siteIcon(added) {
  return L.divIcon({ className: "site-icon" + (added ? " added" : ""), iconSize: [12, 12] });
}

function drawSites() {
  for (const key of Object.keys(siteLayers)) siteLayers[key].remove();
  for (const info of base.layers) {
    const edit = (state.edits[info.key] || { removed: [], added: [] });
    const closed = new Set(edit.removed);
    const group = L.layerGroup();
    const selected = info.key === layer();
    const sites = info.facilities.filter((f) => !closed.has(f.id)).map((f) => [f, false])
      .concat(edit.added.map((s) => [s, true]));
    for (const [site, added] of sites) {
      let m;
      if (selected) {
        m = L.marker([site.lat, site.lon], { icon: siteIcon(added), draggable: mode() === "move" });
        m.on("dragend", () => {
          const at = m.getLatLng();
          edit_({ op: "move", layer: info.key, id: site.id, lon: at.lng, lat: at.lat });
        });
        m.on("click", () => {
          if (mode() === "close") edit_({ op: "close", layer: info.key, id: site.id });
        });
      } else {
        m = L.circleMarker([site.lat, site.lon], {
          radius: 3, color: COLORS[info.key] || "#333", weight: 1, interactive: false });
      }
      m.bindTooltip(() => el("span", site.name + " (" + site.id + ")"));
      group.addLayer(m);
    }
    group.addTo(map);
    siteLayers[info.key] = group;
  }
}

async function drawAreas() {
  const data = await api("/api/areas/" + encodeURIComponent(layer()));
  if (areasLayer) areasLayer.remove();
  areasLayer = L.geoJSON(data, {
    style: { color: COLORS[layer()] || "#333", weight: 1, fillOpacity: 0.12 },
    interactive: false,
  }).addTo(map);
}

function drawSnap(site) {
  if (snapLayer) snapLayer.remove();
  snapLayer = null;
  if (!site || !site.snap) return;
  snapLayer = L.layerGroup([
    L.polyline([[site.lat, site.lon], [site.snap.lat, site.snap.lon]],
      { color: "#000", dashArray: "4 4", weight: 2 }),
    L.circleMarker([site.snap.lat, site.snap.lon], { radius: 4, color: "#000" }),
  ]).addTo(map);
}

// --- tables ----------------------------------------------------------------------------------

function renderGap() {
  const key = layer();
  const head = $("gap").querySelector("thead");
  const body = $("gap").querySelector("tbody");
  head.replaceChildren();
  body.replaceChildren();
  // the walking rules' shares and passes at the chosen profile; the other rules as they are
  const suffix = profile().suffix;
  const others = base.profiles.filter((p) => p.suffix).map((p) => p.suffix);
  const walking = base.walking_rules;
  const allPass = state.gap_report.length
    ? Object.keys(state.gap_report[0]).filter((c) => c.startsWith("pass_")) : [];
  const passCols = walking.map((r) => "pass_" + r + suffix).concat(allPass.filter(
    (c) => !walking.includes(c.slice(5)) && !others.some((s) => walking.some(
      (r) => c === "pass_" + r + s))));
  const label = profile().label ? " (" + profile().label + ")" : "";
  const tr = el("tr");
  for (const t of ["街镇", "区", "数 count", "居民覆盖 share", ...walking.map(
    (r) => r + label), ...passCols.map((c) => c.slice(5)), "原因 reason"]) {
    tr.appendChild(el("th", t));
  }
  head.appendChild(tr);
  const changed = new Set((state.changes || []).map((c) => c.district + "|" + c.jiezhen));
  const q = $("filter").value.trim();
  state.gap_report.forEach((r, i) => {
    if (q && !(r.jiezhen.includes(q) || r.district.includes(q))) return;
    const row = el("tr", null, verdict(r, i));
    if (changed.has(r.district + "|" + r.jiezhen)) row.classList.add("changed");
    row.dataset.jiezhen = r.jiezhen;
    row.appendChild(el("td", r.jiezhen));
    row.appendChild(el("td", r.district));
    row.appendChild(el("td", r[key + "_count"]));
    const share = el("td", pct(r[key + "_demand_share"]));
    share.className = "share";
    row.appendChild(share);
    for (const rid of walking) {
      const cell = el("td", pct(r[rid + "_share" + suffix]), "rule-share");
      cell.dataset.rule = rid;
      row.appendChild(cell);
    }
    for (const c of passCols) {
      const v = r[c];
      row.appendChild(el("td", v === null || v === undefined ? "–" : v ? "✓" : "✗"));
    }
    row.appendChild(el("td", r.reason_zh || r.reason || ""));
    body.appendChild(row);
  });
}

function drawProfiles() {
  const box = $("profiles");
  box.replaceChildren();
  profileId = base.profiles.length ? base.profiles[0].id : null;
  if (base.profiles.length < 2) return;  // one walking speed: nothing to switch
  box.hidden = false;
  const select = el("select");
  select.id = "profile";
  for (const p of base.profiles) {
    const o = el("option", p.label + " " + p.speed_mps.toFixed(2) + " m/s"
      + (p.verdict ? " (判定 verdict)" : ""));
    o.value = p.id;
    select.appendChild(o);
  }
  select.value = profileId;
  select.addEventListener("change", () => {
    profileId = select.value;
    styleUnits();
    renderGap();
  });
  const label = el("label", "步行画像 walking profile ");
  label.appendChild(select);
  box.appendChild(label);
}

function renderCitywide() {
  const body = $("citywide").querySelector("tbody");
  body.replaceChildren();
  const before = new Map((state.citywide_before || state.citywide_base).map((c) => [c.rule, c]));
  for (const c of state.citywide) {
    const b = before.get(c.rule);
    const tr = el("tr");
    tr.appendChild(el("td", c.label || c.rule));
    tr.appendChild(el("td", (b && b.value !== c.value ? b.value + " → " : "") + c.value
      + " / ≥" + c.target));
    tr.appendChild(el("td", c.passed === null ? "–" : c.passed ? "✓" : "✗"));
    body.appendChild(tr);
  }
}

function renderChanges() {
  const box = $("change-body");
  box.replaceChildren();
  const vs = state.vs_base;
  const summary = el("p");
  summary.appendChild(el("span", "相对基线 vs base: "));
  summary.appendChild(el("span", "新达标 newly pass: " + (vs.newly_pass.join("、") || "–"),
    "newly-pass"));
  summary.appendChild(el("span", " · "));
  summary.appendChild(el("span", "新不达标 newly fail: " + (vs.newly_fail.join("、") || "–"),
    "newly-fail"));
  box.appendChild(summary);
  if (!state.changes) return;
  if (!state.changes.length) { box.appendChild(el("p", "本次编辑未改变任何街镇 no 街镇 changed")); return; }
  const list = el("ul");
  for (const c of state.changes) {
    const li = el("li");
    li.appendChild(el("b", c.district + " " + c.jiezhen));
    for (const [col, v] of Object.entries(c.values)) {
      let text = String(v.before) + " → " + String(v.after);
      if (col.endsWith("_share")) {
        const digits = pct(v.before) === pct(v.after) ? 2 : 1;  // a change below 0.1 %
        const p = (x) => (x === null ? "–" : (100 * x).toFixed(digits) + "%");
        text = p(v.before) + " → " + p(v.after);
      }
      li.appendChild(el("span", " " + col + " " + text,
        (v.after === true || v.after > v.before) ? "up" : "down"));
    }
    if (c.change) li.appendChild(el("span", " (" + c.change + ")",
      c.change === "newly passes" ? "newly-pass" : "newly-fail"));
    list.appendChild(li);
  }
  box.appendChild(list);
  if (state.district_changes && state.district_changes.length) {
    box.appendChild(el("p", "区 districts: " + state.district_changes.map((d) => d.district)
      .join("、")));
  }
}

function render(next) {
  state = next;
  $("undo").disabled = !state.can_undo;
  $("scenario-current").textContent = state.name ? "当前 current: " + state.name : "";
  styleUnits();
  drawSites();
  renderGap();
  renderCitywide();
  renderChanges();
}

async function edit_(payload) {
  try {
    const next = await post("/api/edit", payload);
    render(next);
    drawSnap(next.site);
    await drawAreas();
  } catch (e) { render(state); }
}

// --- scenarios, uploads, proposals -----------------------------------------------------------

async function listScenarios() {
  const data = await api("/api/scenarios");
  const list = $("scenarios");
  list.replaceChildren();
  for (const s of data.scenarios) {
    const li = el("li");
    li.appendChild(el("span", s.name + " (+" + s.added + " −" + s.removed + ") "));
    const open = el("button", "打开 open");
    open.type = "button";
    open.addEventListener("click", async () => {
      render(await post("/api/scenarios/" + encodeURIComponent(s.name) + "/open"));
      await drawAreas();
    });
    const cmp = el("button", "对比 compare");
    cmp.type = "button";
    cmp.addEventListener("click", () => compare(s.name));
    li.append(open, cmp);
    list.appendChild(li);
  }
}

async function compare(name) {
  const data = await api("/api/compare?a=current&b=" + encodeURIComponent(name));
  const box = $("compare");
  box.replaceChildren();
  box.appendChild(el("p", "当前 current vs " + name + ": 未达标 uncovered "
    + data.uncovered.a + " | " + data.uncovered.b));
  const table = el("table");
  for (const c of data.changes) {
    const tr = el("tr");
    tr.appendChild(el("td", c.jiezhen));
    const share = c.values[layer() + "_demand_share"];
    tr.appendChild(el("td", share ? pct(share.before) + " | " + pct(share.after) : ""));
    tr.appendChild(el("td", c.change));
    table.appendChild(tr);
  }
  box.appendChild(table);
}

async function upload() {
  const file = $("upload-file").files[0];
  if (!file) { $("error").textContent = "choose a file first"; return; }
  const format = file.name.toLowerCase().endsWith(".gpkg") ? "gpkg" : "geojson";
  const q = new URLSearchParams({ layer: layer(), action: $("upload-action").value, format });
  render(await api("/api/upload?" + q, { method: "POST", body: file }));
  await drawAreas();
}

async function propose() {
  const k = parseInt($("k").value, 10);
  const started = await post("/api/propose", { layer: layer(), k });
  jobId = started.job;
  $("proposals").replaceChildren();
  $("accept").hidden = true;
  const poll = async () => {
    const job = await api("/api/propose/" + jobId);
    $("propose-progress").textContent = job.state === "running"
      ? job.step + " " + (job.total ? job.done + "/" + job.total : "") : job.state;
    if (job.state === "running") { setTimeout(poll, 1000); return; }
    if (job.state === "failed") { $("error").textContent = job.error; return; }
    for (const p of job.proposals) {
      const li = el("li");
      const box = el("input");
      box.type = "checkbox";
      box.value = String(p.rank);
      li.append(box, el("span", " " + p.jiezhen + " +" + p.newly_covered));
      $("proposals").appendChild(li);
      L.marker([p.lat, p.lon], { icon: L.divIcon({ className: "site-icon added",
        iconSize: [14, 14] }) }).bindTooltip(el("span", "#" + p.rank)).addTo(map);
    }
    $("accept").hidden = false;
  };
  poll();
}

async function accept() {
  const ranks = [...$("proposals").querySelectorAll("input:checked")].map((b) => +b.value);
  render(await post("/api/propose/" + jobId + "/accept", { ranks }));
  await drawAreas();
}

// --- start -----------------------------------------------------------------------------------

async function start() {
  base = await api("/api/base");
  $("title").textContent = base.name;
  drawProfiles();
  for (const l of base.layers) {
    const o = el("option", l.label + " (" + l.key + ")");
    o.value = l.key;
    $("layer").appendChild(o);
  }
  if (base.tiles) {
    // Leaflet writes the attribution as HTML: escape it so it stays text
    const a = base.tiles.attribution.replace(/&/g, "&amp;").replace(/</g, "&lt;")
      .replace(/>/g, "&gt;");
    L.tileLayer(base.tiles.url, { attribution: a, maxZoom: 19 }).addTo(map);
  }
  const b = base.bounds;
  map.fitBounds([[b[1], b[0]], [b[3], b[2]]]);
  unitsLayer = L.geoJSON(await api("/api/units"), { onEachFeature: unitTooltip }).addTo(map);
  render(await api("/api/state"));
  map.fitBounds(unitsLayer.getBounds());
  await drawAreas();
  await listScenarios();
  map.on("click", (e) => {
    if (mode() === "add") edit_({ op: "add", layer: layer(), lon: e.latlng.lng, lat: e.latlng.lat });
  });
  $("layer").addEventListener("change", () => { render(state); drawAreas(); });
  for (const r of document.querySelectorAll("input[name=mode]")) {
    r.addEventListener("change", () => drawSites());
  }
  $("undo").addEventListener("click", async () => { render(await post("/api/undo")); drawAreas(); });
  $("reset").addEventListener("click", async () => { render(await post("/api/reset")); drawAreas(); });
  $("filter").addEventListener("input", renderGap);
  $("save").addEventListener("click", async () => {
    const name = $("scenario-name").value.trim();
    await api("/api/scenarios/" + encodeURIComponent(name), { method: "PUT" });
    state.name = name;
    render(state);
    await listScenarios();
  });
  $("upload").addEventListener("click", upload);
  $("run-propose").addEventListener("click", propose);
  $("accept").addEventListener("click", accept);
  window.c15Ready = true;  // every handler is in place (the browser tests wait for this)
}

start();
