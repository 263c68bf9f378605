/* Valves near here (附近阀门): click the map → the isolation valves within a radius, nearest first,
   with code, utility, state and size, numbered on the map; a row zooms to the valve. Control valves
   (PRV, check valves) are listed apart: they are not isolation barriers. */
(function () {
  "use strict";
  var G = window.GovGis;
  G.addText({
    zh: { valvesNear: "附近阀门", valvesNearHint: "点击地图，列出附近的阀门（按距离）", radius: "范围", utilityAll: "全部管线",
      valvesFound: "{r} 米内的阀门：{n} 个", noValvesNear: "{r} 米内没有阀门，可扩大范围", controlValvesNote: "控制阀（减压/止回）不能用于隔离",
      kindCol: "类型", stateCol: "状态", utilityCol: "管线" },
    en: { valvesNear: "Valves near here", valvesNearHint: "Click the map to list the valves nearby (nearest first)", radius: "Radius", utilityAll: "All utilities",
      valvesFound: "Valves within {r} m: {n}", noValvesNear: "No valve within {r} m; widen the radius", controlValvesNote: "Control valves (PRV/check) do not isolate",
      kindCol: "Type", stateCol: "State", utilityCol: "Utility" }
  });
  var RADII = [50, 100, 200, 500];
  var settings = { radius: 100, utility: "" };
  var layer = null;

  function clear() { if (layer) { G.map.removeLayer(layer); layer = null; } }
  function form() {
    var radius = G.el("select", { id: "gg-near-radius" }, RADII.map(function (r) { var o = G.el("option", { value: String(r), text: r + " m" }); o.selected = settings.radius === r; return o; }));
    radius.addEventListener("change", function () { settings.radius = Number(radius.value); if (settings.at) find(settings.at); });
    var utilities = [""];
    Object.keys(G.state.networks || {}).forEach(function (k) { var u = G.state.networks[k].utility; if (utilities.indexOf(u) < 0) utilities.push(u); });
    var utility = G.el("select", { id: "gg-near-utility" }, utilities.map(function (u) {
      var o = G.el("option", { value: u, text: u ? G.title(G.state.utilities[u]) || u : G.t("utilityAll") }); o.selected = settings.utility === u; return o; }));
    utility.addEventListener("change", function () { settings.utility = utility.value; if (settings.at) find(settings.at); });
    return G.el("div", { id: "gg-near" }, [G.el("p", { class: "gg-hint", text: G.t("valvesNearHint") }),
      G.el("div", { class: "gg-form" }, [G.el("label", { text: G.t("radius") }), radius, G.el("label", { text: G.t("utilityCol") }), utility]),
      G.el("div", { id: "gg-near-result" })]);
  }
  function find(latlng) {
    settings.at = latlng;
    var out = document.getElementById("gg-near-result");
    if (!out) { G.showResults(G.t("valvesNear"), form()); out = document.getElementById("gg-near-result"); }
    out.innerHTML = "";
    out.appendChild(G.el("p", { class: "gg-hint", text: G.t("loading") }));
    return G.api("/query/within", { json: { geometry: { type: "Point", coordinates: [latlng.lng, latlng.lat] }, layers: ["pipeline_nodes"], distance: settings.radius },
      where: out, context: G.t("valvesNear") }).then(function (body) {
      var def = G.state.layers.pipeline_nodes.def;
      var valves = body.layers.pipeline_nodes.features.filter(function (f) {
        var p = f.properties;
        return (p.kind === "isolation_valve" || p.kind === "control_valve") && (!settings.utility || G.utilityOf(def, p) === settings.utility);
      }).sort(function (a, b) { return a.properties.distance_m - b.properties.distance_m; });
      var isolating = valves.filter(function (f) { return f.properties.kind === "isolation_valve"; });
      var control = valves.filter(function (f) { return f.properties.kind === "control_valve"; });
      G.state.lastValvesNearAt = { lat: latlng.lat, lng: latlng.lng, radius: settings.radius };
      G.state.lastValvesNear = isolating.map(function (f) { return { id: f.id, code: f.properties.code, distance_m: f.properties.distance_m }; });
      draw(latlng, isolating);
      out.innerHTML = "";
      if (!isolating.length) { out.appendChild(G.el("p", { class: "gg-empty", text: G.t("noValvesNear", { r: settings.radius }) })); return; }
      out.appendChild(G.el("h4", { text: G.t("valvesFound", { r: settings.radius, n: isolating.length }) }));
      out.appendChild(G.table([G.t("order"), G.t("code"), G.t("utilityCol"), G.t("stateCol"), G.t("diameter"), G.t("distance")], isolating.map(function (f, i) {
        var p = f.properties, c = f.geometry.coordinates;
        return { cells: [i + 1, p.code, G.title(G.state.utilities[G.utilityOf(def, p)]) || "", G.fmtValue(def, "valve_state", p.valve_state, p),
          p.diameter_mm ? "DN" + p.diameter_mm : "—", G.fmtNumber(p.distance_m, 1) + " m"],
          attrs: { "data-valve-id": String(f.id), "data-valve-code": p.code },
          onclick: function () { G.map.setView([c[1], c[0]], Math.max(G.map.getZoom(), 18)); G.highlight(f); } };
      }), { id: "gg-near-table" }));
      if (control.length) out.appendChild(G.el("p", { class: "gg-hint", text: G.t("controlValvesNote") + "：" + control.map(function (f) { return f.properties.code; }).join("、") }));
    }).catch(function () {});
  }
  function draw(at, valves) {
    clear();
    layer = L.featureGroup().addTo(G.map);
    L.circle(at, { radius: settings.radius, pane: "gg-highlight", color: "#1f3a5f", weight: 1.5, dashArray: "4 4", fill: false, interactive: false }).addTo(layer);
    valves.slice(0, 20).forEach(function (f, i) {
      var c = f.geometry.coordinates;
      L.marker([c[1], c[0]], { pane: "gg-marker", icon: L.divIcon({ className: "", iconSize: null, iconAnchor: [-8, 8],
        html: '<span class="gg-near-label" data-near-order="' + (i + 1) + '">' + (i + 1) + " " + f.properties.code + "</span>" }) }).addTo(layer);
    });
  }
  G.valvesNear = find;
  G.registerTool({
    id: "valves_near", module: "pipeline", title: { zh: "附近阀门", en: "Valves near here" },
    activate: function () {
      if (G.state.layers.pipeline_nodes && !G.state.layers.pipeline_nodes.on) G.setLayerVisible("pipeline_nodes", true);
      settings.at = null;
      G.showResults(G.t("valvesNear"), form());
    },
    onMapClick: function (e) { find(e.latlng); },
    deactivate: function () { clear(); G.highlight(null); }
  });
})();
