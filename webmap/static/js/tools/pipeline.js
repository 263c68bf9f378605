/* Pipeline accident (爆管关阀): choose the utility (water, gas …), click the burst → the nearest pipe
   of that utility by distance is taken (its code shown and highlighted; the operator may pick another
   nearby pipe) → run: valves to close (numbered nearest first), the isolated segment, the customers
   cut off inside the segment and collateral. "标记此阀失效" when a valve cannot be closed on site →
   the next ring is recomputed (a new stored version); failed valves stay marked on the map by code. */
(function () {
  "use strict";
  var G = window.GovGis;
  G.addText({
    zh: { burst: "爆管关阀", chooseUtility: "1. 选择管线类别", clickBurst: "2. 在地图上点击爆管位置", chooseFirst: "请先选择管线类别，再点击地图",
      noPipeNear: "点击处 {d} 米内没有{u}管线：请在管线上点击，或放大地图", takenPipe: "已选管段", otherPipes: "附近的其他{u}管段（可改选）",
      runIsolation: "3. 开始关阀分析", reselect: "重新点选", valvesToClose: "需关闭阀门",
      order: "序号", code: "编号", diameter: "口径", distance: "距离", distanceFromClick: "距点击处", state: "状态", markFailed: "标记此阀失效",
      segment: "隔离段", pipes: "管段数", lengthM: "长度", volume: "管内存量 m³", customers: "受影响用户", inSegment: "段内",
      collateral: "连带停水", households: "户数", category: "类别", cause: "原因", address: "地址", name: "名称", version: "版本",
      failedValves: "已标记失效的阀门", customersHidden: "您的密钥不能查看用户明细（仅统计）", burstAt: "爆管点",
      failedMark: "失效", utilityLabel: "管线类别", network: "管网", snapping: "正在查找附近管线…", running: "正在计算关阀方案…",
      failing: "正在重新计算（{c} 失效）…", noValves: "无需关闭阀门", problem_choose_utility: "请先选择管线类别（给水、燃气……），再点击地图" },
    en: { burst: "Burst isolation", chooseUtility: "1. Choose the utility", clickBurst: "2. Click the burst on the map", chooseFirst: "Choose the utility first, then click the map",
      noPipeNear: "No {u} pipe within {d} m of the click: click on the pipe, or zoom in", takenPipe: "Pipe taken", otherPipes: "Other {u} pipes nearby (pick one instead)",
      runIsolation: "3. Run the isolation", reselect: "Click again", valvesToClose: "Valves to close",
      order: "No.", code: "Code", diameter: "Size", distance: "Distance", distanceFromClick: "From click", state: "State", markFailed: "Mark this valve failed",
      segment: "Isolated segment", pipes: "Pipes", lengthM: "Length", volume: "Volume m³", customers: "Customers affected", inSegment: "in segment",
      collateral: "collateral", households: "Households", category: "Category", cause: "Cause", address: "Address", name: "Name", version: "Version",
      failedValves: "Valves marked failed", customersHidden: "Your key may not read customer details (counts only)", burstAt: "Burst",
      failedMark: "failed", utilityLabel: "Utility", network: "Network", snapping: "Finding pipes near the click…", running: "Computing the isolation…",
      failing: "Recomputing ({c} failed)…", noValves: "No valve needs closing", problem_choose_utility: "Choose the utility (water, gas …) first, then click the map" }
  });
  var layers = null, candidateLayer = null;
  var state = { utility: null, click: null, candidates: [], chosen: 0 };
  G.state.valveInfo = G.state.valveInfo || {};

  function clear() {
    if (layers) G.map.removeLayer(layers);
    layers = L.featureGroup().addTo(G.map);
  }
  function clearCandidate() { if (candidateLayer) { G.map.removeLayer(candidateLayer); candidateLayer = null; } }
  function utilitiesPresent() {
    var seen = [];
    Object.keys(G.state.networks || {}).forEach(function (k) {
      var u = G.state.networks[k].utility;
      if (seen.indexOf(u) < 0) seen.push(u);
    });
    return seen;
  }
  function utilityName(u) { return G.title((G.state.utilities || {})[u]) || u; }
  function valveIcon(n) {
    return L.divIcon({ className: "", html: '<div class="gg-valve-label" data-valve-order="' + n + '">' + n + "</div>", iconSize: [24, 24], iconAnchor: [12, 12] });
  }
  function failedIcon(code) {
    return L.divIcon({ className: "", html: '<div class="gg-failed-valve" data-failed-code="' + code + '">✕</div>', iconSize: [22, 22], iconAnchor: [11, 11] });
  }
  function burstIcon() {
    // a burst star (no emoji: an intranet PC may have no emoji font)
    var svg = '<svg width="28" height="28" viewBox="0 0 28 28" xmlns="http://www.w3.org/2000/svg"><path d="M14 1L17 9L25 5L20 12L27 15L19 17L22 26L14 20L6 26L9 17L1 15L8 12L3 5L11 9Z" ' +
      'fill="#ffd600" stroke="#d7191c" stroke-width="2" stroke-linejoin="round"/></svg>';
    return L.divIcon({ className: "", html: '<div class="gg-burst-marker" title="' + G.t("burstAt") + '">' + svg + "</div>", iconSize: [28, 28], iconAnchor: [14, 14] });
  }
  function remember(list) {
    (list || []).forEach(function (v) { if (v && v.id !== undefined) G.state.valveInfo[v.id] = { code: v.code, lat: v.lat, lon: v.lon }; });
  }
  function valveCode(id) { var v = G.state.valveInfo[id]; return v && v.code ? v.code : "#" + id; }

  /* ---------- step 1 and 2: utility, click, nearest pipe of that utility ---------- */
  function panel() {
    var box = G.el("div", { id: "gg-burst" });
    var choice = G.el("div", { id: "gg-utility-choice", class: "gg-choice", role: "radiogroup" });
    var present = utilitiesPresent();
    if (present.length === 1 && !state.utility) state.utility = present[0];
    present.forEach(function (u) {
      var input = G.el("input", { type: "radio", name: "gg-utility", value: u, "data-utility": u });
      input.checked = state.utility === u;
      input.addEventListener("change", function () { state.utility = u; G.clearProblem(choice); if (state.click) snap(state.click); });
      choice.appendChild(G.el("label", { class: "gg-choice-item" }, [input,
        G.el("span", { class: "gg-swatch gg-line", style: "background:" + G.utilityColor(u) }), utilityName(u)]));
    });
    box.appendChild(G.el("h4", { text: G.t("chooseUtility") }));
    box.appendChild(choice);
    box.appendChild(G.el("h4", { text: G.t("clickBurst") }));
    box.appendChild(G.el("div", { id: "gg-burst-pick" }, [G.el("p", { class: "gg-hint", text: G.t("clickBurst") })]));
    return box;
  }
  function snap(latlng) {
    var pick = document.getElementById("gg-burst-pick");
    if (!state.utility) { G.showProblem(document.getElementById("gg-utility-choice"), { slug: "choose-utility" }); G.message(G.t("chooseFirst"), true); return Promise.resolve(null); }
    state.click = latlng;
    clearCandidate();
    var radius = Math.min(80, Math.max(10, 12 * G.metresPerPixel(latlng.lat)));
    pick.innerHTML = "";
    pick.appendChild(G.el("p", { class: "gg-hint", text: G.t("snapping") }));
    return G.api("/query/within", { json: { geometry: { type: "Point", coordinates: [latlng.lng, latlng.lat] }, layers: ["pipeline_pipes"], distance: radius },
      where: pick, context: G.t("burst") }).then(function (body) {
      var fc = body.layers.pipeline_pipes, def = G.state.layers.pipeline_pipes.def;
      state.candidates = fc.features.filter(function (f) {
        return G.utilityOf(def, f.properties) === state.utility && (!f.properties.status || f.properties.status === "in_service");
      }).sort(function (a, b) { return a.properties.distance_m - b.properties.distance_m; }).slice(0, 6);
      state.chosen = 0;
      G.state.burstCandidates = state.candidates.map(function (f) { return { id: f.id, code: f.properties.code, distance_m: f.properties.distance_m }; });
      showCandidates(radius);
      return state.candidates[0] || null;
    }).catch(function () { return null; });
  }
  function showCandidates(radius) {
    var pick = document.getElementById("gg-burst-pick");
    pick.innerHTML = "";
    if (!state.candidates.length) {
      pick.appendChild(G.el("div", { class: "gg-problem", role: "alert", "data-problem": "no-pipe",
        text: G.t("noPipeNear", { d: Math.round(radius), u: utilityName(state.utility) }) }));
      G.message(G.t("noPipeNear", { d: Math.round(radius), u: utilityName(state.utility) }), true);
      return;
    }
    G.message("");
    var chosen = state.candidates[state.chosen], p = chosen.properties;
    pick.appendChild(G.el("div", { class: "gg-taken", id: "gg-taken-pipe", "data-pipe-id": String(chosen.id), "data-pipe-code": p.code }, [
      G.el("div", { class: "gg-hint", text: G.t("takenPipe") }),
      G.el("strong", { text: p.code }),
      G.el("span", { text: " · " + utilityName(state.utility) + (p.diameter_mm ? " · DN" + p.diameter_mm : "") + (p.material ? " · " + p.material : "") +
        " · " + G.t("distanceFromClick") + " " + G.fmtNumber(p.distance_m, 1) + " m" })]));
    if (state.candidates.length > 1) {
      pick.appendChild(G.el("div", { class: "gg-hint", text: G.t("otherPipes", { u: utilityName(state.utility) }) }));
      var list = G.el("div", { class: "gg-choice", id: "gg-pipe-choices" });
      state.candidates.forEach(function (f, i) {
        var input = G.el("input", { type: "radio", name: "gg-pipe", value: String(f.id), "data-pipe-id": String(f.id) });
        input.checked = i === state.chosen;
        input.addEventListener("change", function () { state.chosen = i; showCandidates(radius); });
        list.appendChild(G.el("label", { class: "gg-choice-item" }, [input, f.properties.code + " · " + G.fmtNumber(f.properties.distance_m, 1) + " m" +
          (f.properties.diameter_mm ? " · DN" + f.properties.diameter_mm : "")]));
      });
      pick.appendChild(list);
    }
    var run = G.el("button", { class: "gg-btn gg-primary", id: "gg-run-isolation", text: G.t("runIsolation") });
    run.addEventListener("click", function () { isolate(chosen, run); });
    pick.appendChild(run);
    // the taken pipe, highlighted in its utility's colour with its code beside it
    candidateLayer = L.featureGroup().addTo(G.map);
    L.geoJSON(chosen, { pane: "gg-highlight", style: { color: "#ffeb3b", weight: 9, opacity: 0.85, className: "gg-candidate-halo" } }).addTo(candidateLayer);
    var line = L.geoJSON(chosen, { pane: "gg-highlight", style: { color: G.utilityColor(state.utility), weight: 4, className: "gg-candidate" } }).addTo(candidateLayer);
    line.bindTooltip(p.code, { permanent: true, direction: "top", className: "gg-code-label" }).openTooltip(state.click);
    L.marker(state.click, { icon: burstIcon(), pane: "gg-marker", interactive: false }).addTo(candidateLayer);
    G.state.takenPipe = { id: chosen.id, code: p.code, network_id: p.network_id };
  }

  /* ---------- step 3: the isolation ---------- */
  function isolate(pipe, button) {
    var pick = document.getElementById("gg-burst-pick");
    G.message(G.t("running"));
    return G.api("/pipeline/isolations", { json: { network_id: pipe.properties.network_id, pipe_id: pipe.id },
      where: button || pick, context: G.t("burst") }).then(function (r) { G.message(""); G.showIsolation(r); return r; }).catch(function () { return null; });
  }
  G.isolatePipe = function (networkId, pipeId) {
    return G.api("/pipeline/isolations", { json: { network_id: networkId, pipe_id: pipeId }, context: G.t("burst") }).then(function (r) { G.showIsolation(r); return r; });
  };

  function drawCustomers(result) {
    var list = result.customers && result.customers.list;
    if (!list || !list.length || !G.state.layers.pipeline_customers) return Promise.resolve();
    var ids = list.map(function (c) { return c.id; });
    var cause = {};
    list.forEach(function (c) { cause[c.id] = c.cause; });
    return G.api("/collections/pipeline_customers/items?" + G.qs({ filter: "id IN (" + ids.join(",") + ")", "filter-lang": "cql2-text", limit: ids.length }),
      { where: false }).then(function (fc) {
        var collateral = fc.features.filter(function (f) { return f.geometry && cause[f.id] === "collateral"; })
          .map(function (f) { return f.geometry.coordinates; });
        var ring = hull(collateral);
        if (ring) {
          L.polygon(ring.map(function (c) { return [c[1], c[0]]; }), { pane: "gg-highlight", color: "#ff8c00", weight: 2,
            dashArray: "6 4", fillColor: "#ff8c00", fillOpacity: 0.15, className: "gg-collateral" }).addTo(layers);
        }
        G.state.collateralDrawn = collateral.length;
        fc.features.forEach(function (f) {
          if (!f.geometry) return;
          var c = f.geometry.coordinates;
          L.circleMarker([c[1], c[0]], { pane: "gg-highlight", radius: 5, weight: 1, color: "#fff", fillOpacity: 1,
            fillColor: cause[f.id] === "collateral" ? "#ff8c00" : "#d7191c", className: "gg-customer gg-customer-" + cause[f.id] }).addTo(layers);
        });
      }).catch(function () {});
  }
  // convex hull (monotone chain) of [lng, lat] points: the outline of the collateral outage
  function hull(points) {
    var p = points.slice().sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; });
    if (p.length < 3) return null;
    function cross(o, a, b) { return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]); }
    var lower = [], upper = [];
    p.forEach(function (q) { while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], q) <= 0) lower.pop(); lower.push(q); });
    p.slice().reverse().forEach(function (q) { while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], q) <= 0) upper.pop(); upper.push(q); });
    var ring = lower.slice(0, -1).concat(upper.slice(0, -1));
    return ring.length >= 3 ? ring : null;
  }
  function customerCategory(c) {
    var def = G.state.layers.pipeline_customers && G.state.layers.pipeline_customers.def;
    return def ? G.fmtValue(def, "category", c.category) : c.category;
  }
  G.showIsolation = function (result) {
    clear();
    clearCandidate();
    G.state.lastIsolation = result;
    remember(result.valves_to_close); remember(result.valves_already_closed); remember(result.valves_not_needed);
    (result.second_ring || []).forEach(function (r) { remember(r.fallback_valves); });
    if (result.segment && result.segment.outline) {
      L.geoJSON(typeof result.segment.outline === "string" ? JSON.parse(result.segment.outline) : result.segment.outline,
        { pane: "gg-highlight", style: { color: "#d7191c", weight: 2, fillColor: "#d7191c", fillOpacity: 0.35, className: "gg-segment" } }).addTo(layers);
    }
    if (state.click) L.marker(state.click, { icon: burstIcon(), pane: "gg-marker", interactive: false }).addTo(layers);
    var failed = result.failed_valves || [];
    failed.forEach(function (id) {
      var v = G.state.valveInfo[id];
      if (!v || v.lat == null) return;
      // under the numbered valves (a valve of the next ring may sit right beside the failed one)
      L.marker([v.lat, v.lon], { icon: failedIcon(v.code || id), pane: "gg-highlight", title: G.t("failedMark") + " " + valveCode(id) })
        .bindTooltip(valveCode(id) + " " + G.t("failedMark"), { permanent: true, direction: "right", offset: [10, 0], className: "gg-failed-label" })
        .addTo(layers);
    });
    result.valves_to_close.forEach(function (v, i) {
      if (v.lat == null) return;
      L.marker([v.lat, v.lon], { icon: valveIcon(i + 1), pane: "gg-marker", title: v.code || String(v.id) }).addTo(layers);
    });
    drawCustomers(result);
    var utility = result.utility || state.utility;
    var box = G.el("div", { id: "gg-isolation", "data-isolation-id": String(result.id), "data-utility": utility || "" });
    box.appendChild(G.table([G.t("field"), G.t("value")], [
      { cells: [G.t("utilityLabel"), utilityName(utility)] },
      { cells: [G.t("network"), result.network || ""] },
      { cells: [G.t("takenPipe"), result.burst && result.burst.pipe_code || ""], attrs: { "data-burst-pipe": result.burst && result.burst.pipe_code || "" } },
      { cells: [G.t("version"), "#" + result.id + (result.created_at ? " · " + G.fmtDateTime(result.created_at) : "")] }
    ], { class: "gg-table gg-kv", id: "gg-isolation-summary" }));
    if (failed.length) {
      box.appendChild(G.el("p", { class: "gg-failed-list", id: "gg-failed-valves" }, [G.el("strong", { text: G.t("failedValves") + "：" }),
        failed.map(valveCode).join("、")]));
    }
    box.appendChild(G.el("h4", { text: G.t("valvesToClose") + " (" + result.valves_to_close.length + ")" }));
    if (!result.valves_to_close.length) box.appendChild(G.el("p", { class: "gg-hint", text: G.t("noValves") }));
    box.appendChild(G.table([G.t("order"), G.t("code"), G.t("diameter"), G.t("distance"), ""],
      result.valves_to_close.map(function (v, i) {
        var btn = G.el("button", { class: "gg-btn gg-fail", "data-valve": String(v.id), text: G.t("markFailed") });
        btn.addEventListener("click", function (e) { e.stopPropagation(); markFailed(result.id, v, btn); });
        return { cells: [i + 1, v.code || "#" + v.id, v.diameter_mm ? "DN" + v.diameter_mm : "—", v.distance_m !== null && v.distance_m !== undefined ? G.fmtNumber(v.distance_m, 0) + " m" : "—", btn],
          attrs: { "data-valve-id": String(v.id), "data-valve-code": v.code || "" },
          onclick: function () { G.map.setView([v.lat, v.lon], Math.max(G.map.getZoom(), 17)); } };
      }), { id: "gg-valves-table" }));
    var seg = result.segment || {};
    box.appendChild(G.el("h4", { text: G.t("segment") }));
    box.appendChild(G.table([G.t("pipes"), G.t("lengthM"), G.t("volume")], [{ cells: [seg.pipe_count, G.fmtLength(seg.length_m), G.fmtNumber(seg.volume_m3, 1)] }], { id: "gg-segment-table" }));
    var cu = result.customers || {};
    box.appendChild(G.el("h4", { text: G.t("customers") + ": " + cu.total + " (" + G.t("inSegment") + " " + cu.inside_segment + ", " +
      G.t("collateral") + " " + cu.collateral + ") · " + G.t("households") + " " + G.fmtNumber(cu.households || 0, 0) }));
    if (cu.list) {
      box.appendChild(G.table([G.t("name"), G.t("category"), G.t("address"), G.t("cause")], cu.list.map(function (c) {
        return { cells: [c.name, customerCategory(c), c.address, G.t(c.cause === "collateral" ? "collateral" : "inSegment")], attrs: { "data-customer-id": String(c.id), "data-cause": c.cause } };
      }), { id: "gg-customers-table" }));
    } else {
      box.appendChild(G.el("p", { class: "gg-hint", text: G.t("customersHidden") }));
    }
    G.showResults(G.t("burst"), box);
    G.emit("pipeline:isolation", { result: result, panel: box });
    var bounds = layers.getBounds();
    if (bounds.isValid()) G.map.fitBounds(bounds, { maxZoom: 18, padding: [30, 30] });
    document.body.setAttribute("data-isolation", String(result.id));
  };
  function markFailed(isolationId, valve, button) {
    G.message(G.t("failing", { c: valve.code || valve.id }));
    button.disabled = true;
    return G.api("/pipeline/isolations/" + isolationId + "/failed-valves", { json: { valves: [valve.id] }, where: button, context: G.t("markFailed") })
      .then(function (r) { G.message(""); G.showIsolation(r); return r; })
      .catch(function () { button.disabled = false; });
  }
  G.registerTool({
    id: "burst", module: "pipeline", title: { zh: "爆管关阀", en: "Burst isolation" },
    activate: function () {
      if (G.state.layers.pipeline_pipes && !G.state.layers.pipeline_pipes.on) G.setLayerVisible("pipeline_pipes", true);
      state.click = null; state.candidates = [];
      G.showResults(G.t("burst"), panel());
    },
    onMapClick: function (e) { snap(e.latlng); },
    onLanguage: function () { if (G.state.activeTool === "burst" && !G.state.lastIsolation) G.showResults(G.t("burst"), panel()); },
    deactivate: function () { clearCandidate(); if (layers) { G.map.removeLayer(layers); layers = null; } }
  });
})();
