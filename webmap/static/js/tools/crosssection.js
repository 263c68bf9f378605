/* Cross-section (横断面): draw a cut line across the street → every pipe it crosses, nearest the line's
   start first, with utility, code, size, depth (DEM ground minus burial depth), the spacing between
   neighbours and the GB 50289 horizontal clearances (violations in red), and the server's drawing. */
(function () {
  "use strict";
  var G = window.GovGis;
  G.addText({
    zh: { crossSection: "横断面", crossSectionHint: "在地图上画一条剖切线（单击起点、双击终点），列出穿过的管线",
      xsFound: "剖切线 {l} m，穿过管线 {n} 条，净距不足 {v} 处", xsNone: "剖切线没有穿过管线",
      xsPosition: "距起点", xsDepth: "埋深", xsTop: "管顶高程", xsSpacing: "与下一条间距", xsClear: "净距/要求",
      xsDrawing: "横断面图", xsNo: "序号", xsUtility: "管线", xsCode: "编号", xsSize: "管径" },
    en: { crossSection: "Cross-section", crossSectionHint: "Draw a cut line on the map (click the start, double-click the end) to list the pipes it crosses",
      xsFound: "Cut line {l} m: {n} pipes crossed, {v} clearance violations", xsNone: "The cut line crosses no pipe",
      xsPosition: "From start", xsDepth: "Depth", xsTop: "Top level", xsSpacing: "Spacing to next", xsClear: "Clear / required",
      xsDrawing: "Cross-section drawing", xsNo: "No.", xsUtility: "Utility", xsCode: "Code", xsSize: "Size" }
  });
  var kept = null, picture = null;

  function clear() {
    if (kept) { G.map.removeLayer(kept); kept = null; }
    if (picture) { URL.revokeObjectURL(picture); picture = null; }
  }
  function m(value, digits) { return value === null || value === undefined ? "—" : G.fmtNumber(value, digits === undefined ? 2 : digits) + " m"; }
  function show(body, line) {
    var out = G.el("div", { id: "gg-xs" });
    G.state.lastCrossSection = body;
    if (!body.count) { out.appendChild(G.el("p", { class: "gg-empty", text: G.t("xsNone") })); G.showResults(G.t("crossSection"), out); return; }
    out.appendChild(G.el("h4", { text: G.t("xsFound", { l: G.fmtNumber(body.length_m, 1), n: body.count, v: body.violations }) }));
    var next = {};
    body.neighbours.forEach(function (n, i) { next[i] = n; });
    out.appendChild(G.table([G.t("xsNo"), G.t("xsUtility"), G.t("xsCode"), G.t("xsSize"), G.t("xsPosition"), G.t("xsDepth"),
      G.t("xsTop"), G.t("xsSpacing"), G.t("xsClear")], body.crossings.map(function (c, i) {
      var n = next[i];
      return { cells: [i + 1, c.utility_zh, c.code, c.diameter_mm ? "DN" + c.diameter_mm : "—", m(c.position_m), m(c.burial_depth_m),
        m(c.top_m), n ? m(n.spacing_m) : "", n ? m(n.clear_m) + (n.required_m !== null ? " / " + m(n.required_m, 1) : "") : ""],
        attrs: { "data-pipe-id": String(c.pipe_id), "data-position": String(c.position_m), "class": (n && n.violation) || c.violation ? "gg-violation" : "" } };
    }), { id: "gg-xs-table" }));
    var img = G.el("img", { id: "gg-xs-drawing", alt: G.t("xsDrawing"), style: "width:100%;margin-top:6px;border:1px solid #ccc" });
    out.appendChild(img);
    G.showResults(G.t("crossSection"), out);
    G.api("/pipeline/cross-section", { json: { geometry: line, f: "svg" }, where: out, context: G.t("xsDrawing") }).then(function (svg) {
      picture = URL.createObjectURL(new Blob([svg], { type: "image/svg+xml" }));
      img.src = picture;
      img.setAttribute("data-loaded", "1");
    }).catch(function () {});
  }
  function start() {
    clear();
    G.showResults(G.t("crossSection"), G.el("p", { class: "gg-hint", text: G.t("crossSectionHint") }));
    G.draw("line", { keep: true }).then(function (res) {
      kept = res.layer;
      var line = { type: "LineString", coordinates: res.latlngs.map(function (p) { return [p.lng, p.lat]; }) };
      G.state.lastCutLine = line;
      var box = G.el("div", {}, [G.el("p", { class: "gg-hint", text: G.t("loading") })]);
      G.showResults(G.t("crossSection"), box);
      return G.api("/pipeline/cross-section", { json: { geometry: line }, where: box, context: G.t("crossSection") })
        .then(function (body) { show(body, line); });
    }).catch(function () {});
  }
  G.registerTool({
    id: "cross_section", module: "pipeline", title: { zh: "横断面", en: "Cross-section" },
    activate: start,
    deactivate: function () { G.draw.cancel(); clear(); }
  });
})();
