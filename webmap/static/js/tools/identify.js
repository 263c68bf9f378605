/* Identify: click the map → attributes of every feature there, in every layer the caller may read
   (the server masks personal data per the caller's rights). */
(function () {
  "use strict";
  var G = window.GovGis;
  G.addText({ zh: { identify: "查询属性", identifyEmpty: "此处没有要素" }, en: { identify: "Identify", identifyEmpty: "Nothing here" } });

  function fieldTitle(def, name) {
    var f = def && def.fields && def.fields[name];
    return f ? G.title(f) : name;
  }
  G.identifyAt = function (latlng) {
    G.message(G.t("loading"));
    // a click hits what lies within 4 screen pixels, in metres at this zoom and latitude
    var metresPerPixel = 40075016.686 * Math.cos(latlng.lat * Math.PI / 180) / Math.pow(2, G.map.getZoom() + 8);
    var tolerance = Math.min(1000, Math.max(0.5, 4 * metresPerPixel));
    var params = { x: latlng.lng.toFixed(7), y: latlng.lat.toFixed(7), crs: "CRS84", tolerance: tolerance.toFixed(2) };
    G.state.lastIdentifyParams = params;
    return G.api("/query/identify?" + G.qs(params)).then(function (body) {
      G.message("");
      var box = G.el("div", { id: "gg-identify" });
      var all = [];
      Object.keys(body.layers || {}).forEach(function (id) {
        var fc = body.layers[id];
        if (!fc || !fc.features || !fc.features.length) return;
        var entry = G.state.layers[id];
        var def = entry && entry.def;
        box.appendChild(G.el("h4", { "data-identify-layer": id, text: (def ? G.title(def.title) : id) + " (" + fc.features.length + ")" }));
        fc.features.forEach(function (f) {
          all.push(f);
          var props = f.properties || {};
          var rows = Object.keys(props).map(function (k) { return { cells: [fieldTitle(def, k), props[k]], attrs: { "data-field": k } }; });
          box.appendChild(G.table([G.t("field"), G.t("value")], rows, { class: "gg-table gg-identify-feature", "data-layer": id, "data-id": String(f.id) }));
        });
      });
      if (!all.length) box.appendChild(G.el("p", { class: "gg-empty", text: G.t("identifyEmpty") }));
      G.highlight({ type: "FeatureCollection", features: all });
      G.showResults(G.t("identify"), box);
      G.state.lastIdentify = body;
      return body;
    }).catch(function (err) { G.message(G.t("error") + ": " + err.message, true); });
  };
  G.registerTool({
    id: "identify", module: "common", title: { zh: "查询属性", en: "Identify" },
    onMapClick: function (e) { G.identifyAt(e.latlng); },
    deactivate: function () { G.highlight(null); }
  });
})();
