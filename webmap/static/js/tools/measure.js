/* Measure length and area: plane figures in the city's CGCS2000 projected CRS. */
(function () {
  "use strict";
  var G = window.GovGis;
  G.addText({
    zh: { measureLength: "量距离", measureArea: "量面积", measureHint: "单击添加节点，双击结束，Esc 取消；面积以 CGCS2000 投影平面计算", length: "长度", area: "面积", perimeter: "周长" },
    en: { measureLength: "Length", measureArea: "Area", measureHint: "Click to add points, double-click to finish, Esc to cancel; plane figures in CGCS2000 projected", length: "Length", area: "Area", perimeter: "Perimeter" }
  });
  var kept = null;
  function show(kind, latlngs) {
    var rows = [];
    if (kind === "line") {
      var length = G.planeLength(latlngs, false);
      rows.push({ cells: [G.t("length"), G.fmtLength(length)], attrs: { "data-measure": "length", "data-value": String(length) } });
    } else if (latlngs.length >= 3) {
      var area = G.planeArea(latlngs), perimeter = G.planeLength(latlngs, true);
      rows.push({ cells: [G.t("area"), G.fmtArea(area, true)], attrs: { "data-measure": "area", "data-value": String(area) } });
      rows.push({ cells: [G.t("perimeter"), G.fmtLength(perimeter)], attrs: { "data-measure": "perimeter", "data-value": String(perimeter) } });
    }
    var box = G.el("div", {}, [G.el("p", { class: "gg-hint", text: G.t("measureHint") }), G.table([G.t("field"), G.t("value")], rows, { id: "gg-measure-table" })]);
    G.showResults(G.t(kind === "line" ? "measureLength" : "measureArea"), box);
  }
  function start(kind) {
    if (kept) { G.map.removeLayer(kept); kept = null; }
    show(kind, []);
    G.draw(kind === "line" ? "line" : "polygon", { keep: true, onChange: function (pts) { show(kind, pts); } })
      .then(function (res) { kept = res.layer; show(kind, res.latlngs); G.state.lastMeasure = { kind: kind, latlngs: res.latlngs.map(function (p) { return [p.lng, p.lat]; }) }; })
      .catch(function () {});
  }
  [["measure_length", "line", "measureLength", "测距离", "Length"], ["measure_area", "polygon", "measureArea", "量面积", "Area"]].forEach(function (d) {
    G.registerTool({
      id: d[0], module: "common", title: { zh: d[3], en: d[4] },
      activate: function () { start(d[1]); },
      deactivate: function () { G.draw.cancel(); if (kept) { G.map.removeLayer(kept); kept = null; } }
    });
  });
})();
