/* Export the current view: the features of every visible layer inside the view, as one GeoJSON
   file (RFC 7946, lon/lat); each feature names its layer in the foreign member "layer". */
(function () {
  "use strict";
  var G = window.GovGis;
  var LIMIT = 10000;
  G.addText({ zh: { exportView: "导出当前视图", exported: "已导出" }, en: { exportView: "Export view", exported: "Exported" } });

  G.exportView = function () {
    var defs = G.visibleLayers().filter(function (d) { return d.items && (G.map.getZoom() >= d.min_zoom || d.basemap); });
    var bbox = G.viewBbox();
    G.message(G.t("loading"));
    return Promise.all(defs.map(function (def) {
      return G.api(def.items + "?" + G.qs({ bbox: bbox, limit: LIMIT }), { where: false }).then(function (fc) { return { def: def, fc: fc }; });
    })).then(function (parts) {
      var features = [], counts = {};
      parts.forEach(function (p) {
        counts[p.def.id] = p.fc.features.length;
        p.fc.features.forEach(function (f) { f.layer = p.def.id; features.push(f); });
      });
      var doc = { type: "FeatureCollection", bbox: bbox.split(",").map(Number), layers: counts, features: features };
      var blob = new Blob([JSON.stringify(doc)], { type: "application/geo+json" });
      var a = G.el("a", { href: URL.createObjectURL(blob), download: "govgis-view.geojson" });
      document.body.appendChild(a); a.click(); a.remove();
      var rows = Object.keys(counts).map(function (id) { return { cells: [G.title(G.state.layers[id].def.title), counts[id]], attrs: { "data-layer": id } }; });
      G.showResults(G.t("exported") + " (" + features.length + ")", G.table([G.t("layer"), G.t("count", { n: "" })], rows, { id: "gg-export-table" }));
      G.message("");
      return doc;
    }).catch(function (err) {
      G.showResults(G.t("exportView"), G.el("div", { id: "gg-export" }));
      G.showProblem("#gg-export", err, G.t("exportView"));
    });
  };
  G.registerTool({
    id: "export", module: "common", title: { zh: "导出视图", en: "Export view" },
    activate: function () { G.exportView().then(function () { G.activateTool(G.defaultTool); }); }
  });
})();
