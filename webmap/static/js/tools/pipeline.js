/* Pipeline accident: click a pipe → valves to close (numbered nearest first), the isolated segment,
   the customers cut off inside the segment and collateral (no remaining path to a source); mark a
   valve as failed → the next ring is recomputed (a new stored version) and redrawn. */
(function () {
  "use strict";
  var G = window.GovGis;
  G.addText({
    zh: { burst: "爆管关阀", burstHint: "点击发生爆管的管段", noPipe: "点击处附近没有可见管线", valvesToClose: "需关闭阀门",
      order: "序号", code: "编号", diameter: "口径 mm", distance: "距离 m", state: "状态", failed: "阀门失效",
      segment: "隔离段", pipes: "管段", lengthM: "长度 m", volume: "管内水量 m³", customers: "受影响用户", inSegment: "段内",
      collateral: "连带停水", households: "户数", category: "类别", cause: "原因", address: "地址", name: "名称", version: "版本",
      failedValves: "失效阀门", customersHidden: "您的密钥不能查看用户明细（仅统计）" },
    en: { burst: "Burst isolation", burstHint: "Click the burst pipe", noPipe: "No visible pipe near the click", valvesToClose: "Valves to close",
      order: "No.", code: "Code", diameter: "Dia. mm", distance: "Dist. m", state: "State", failed: "Failed",
      segment: "Isolated segment", pipes: "Pipes", lengthM: "Length m", volume: "Water volume m³", customers: "Customers affected", inSegment: "in segment",
      collateral: "collateral", households: "Households", category: "Category", cause: "Cause", address: "Address", name: "Name", version: "Version",
      failedValves: "Failed valves", customersHidden: "Your key may not read customer details (counts only)" }
  });
  var layers = null;

  function clear() {
    if (layers) G.map.removeLayer(layers);
    layers = L.featureGroup().addTo(G.map);
  }
  function valveIcon(n) {
    return L.divIcon({ className: "", html: '<div class="gg-valve-label" data-valve-order="' + n + '">' + n + "</div>", iconSize: [24, 24], iconAnchor: [12, 12] });
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
  function drawCustomers(result) {
    var list = result.customers && result.customers.list;
    if (!list || !list.length || !G.state.layers.pipeline_customers) return Promise.resolve();
    var ids = list.map(function (c) { return c.id; });
    var cause = {};
    list.forEach(function (c) { cause[c.id] = c.cause; });
    return G.api("/collections/pipeline_customers/items?" + G.qs({ filter: "id IN (" + ids.join(",") + ")", "filter-lang": "cql2-text", limit: ids.length }))
      .then(function (fc) {
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
      });
  }
  G.showIsolation = function (result) {
    clear();
    G.state.lastIsolation = result;
    if (result.segment && result.segment.outline) {
      L.geoJSON(typeof result.segment.outline === "string" ? JSON.parse(result.segment.outline) : result.segment.outline,
        { pane: "gg-highlight", style: { color: "#d7191c", weight: 2, fillColor: "#d7191c", fillOpacity: 0.35, className: "gg-segment" } }).addTo(layers);
    }
    var failed = result.failed_valves || [];
    result.valves_to_close.forEach(function (v, i) {
      if (v.lat == null) return;
      L.marker([v.lat, v.lon], { icon: valveIcon(i + 1), pane: "gg-highlight", title: v.code || String(v.id) }).addTo(layers);
    });
    drawCustomers(result);
    var box = G.el("div", { id: "gg-isolation", "data-isolation-id": String(result.id) });
    box.appendChild(G.el("p", { text: (result.network || "") + " · " + G.t("code") + " " + (result.burst && result.burst.pipe_code || "") +
      " · " + G.t("version") + " #" + result.id + (failed.length ? " · " + G.t("failedValves") + ": " + failed.join(", ") : "") }));
    box.appendChild(G.el("h4", { text: G.t("valvesToClose") + " (" + result.valves_to_close.length + ")" }));
    box.appendChild(G.table([G.t("order"), G.t("code"), G.t("diameter"), G.t("distance"), ""],
      result.valves_to_close.map(function (v, i) {
        var btn = G.el("button", { class: "gg-btn gg-fail", "data-valve": String(v.id), text: G.t("failed") });
        btn.addEventListener("click", function (e) { e.stopPropagation(); markFailed(result.id, v.id); });
        return { cells: [i + 1, v.code, v.diameter_mm, v.distance_m, btn], attrs: { "data-valve-id": String(v.id) },
          onclick: function () { G.map.setView([v.lat, v.lon], Math.max(G.map.getZoom(), 17)); } };
      }), { id: "gg-valves-table" }));
    var seg = result.segment || {};
    box.appendChild(G.el("h4", { text: G.t("segment") }));
    box.appendChild(G.table([G.t("pipes"), G.t("lengthM"), G.t("volume")], [{ cells: [seg.pipe_count, G.fmt(seg.length_m, 2), seg.volume_m3] }], { id: "gg-segment-table" }));
    var cu = result.customers || {};
    box.appendChild(G.el("h4", { text: G.t("customers") + ": " + cu.total + " (" + G.t("inSegment") + " " + cu.inside_segment + ", " +
      G.t("collateral") + " " + cu.collateral + ") · " + G.t("households") + " " + cu.households }));
    if (cu.list) {
      box.appendChild(G.table([G.t("name"), G.t("category"), G.t("address"), G.t("cause")], cu.list.map(function (c) {
        return { cells: [c.name, c.category, c.address, G.t(c.cause === "collateral" ? "collateral" : "inSegment")], attrs: { "data-customer-id": String(c.id), "data-cause": c.cause } };
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
  function markFailed(isolationId, valveId) {
    G.message(G.t("loading"));
    return G.api("/pipeline/isolations/" + isolationId + "/failed-valves", { json: { valves: [valveId] } })
      .then(function (r) { G.message(""); G.showIsolation(r); return r; })
      .catch(function (err) { G.message(G.t("error") + ": " + err.message, true); });
  }
  G.isolateAt = function (latlng) {
    var metresPerPixel = 40075016.686 * Math.cos(latlng.lat * Math.PI / 180) / Math.pow(2, G.map.getZoom() + 8);
    var params = { x: latlng.lng.toFixed(7), y: latlng.lat.toFixed(7), crs: "CRS84", layers: "pipeline_pipes",
      tolerance: Math.min(200, Math.max(1, 6 * metresPerPixel)).toFixed(2) };
    G.message(G.t("loading"));
    return G.api("/query/identify?" + G.qs(params)).then(function (body) {
      var fc = body.layers && body.layers.pipeline_pipes;
      if (!fc || !fc.features.length) { G.message(G.t("noPipe"), true); return null; }
      var pipe = fc.features[0];
      return G.api("/pipeline/isolations", { json: { network_id: pipe.properties.network_id, pipe_id: pipe.id } })
        .then(function (r) { G.message(""); G.showIsolation(r); return r; });
    }).catch(function (err) { G.message(G.t("error") + ": " + err.message, true); });
  };
  G.registerTool({
    id: "burst", module: "pipeline", title: { zh: "爆管关阀", en: "Burst isolation" },
    activate: function () {
      if (G.state.layers.pipeline_pipes && !G.state.layers.pipeline_pipes.on) G.setLayerVisible("pipeline_pipes", true);
      G.showResults(G.t("burst"), G.el("p", { class: "gg-hint", text: G.t("burstHint") }));
    },
    onMapClick: function (e) { G.isolateAt(e.latlng); },
    deactivate: function () { if (layers) { G.map.removeLayer(layers); layers = null; } }
  });
})();
