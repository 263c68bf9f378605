/* Search: parcels by code, right holder or address; pipes, valves and resources by id — every layer
   the caller may read is searched on its declared searchable fields (CQL2 LIKE over /collections). */
(function () {
  "use strict";
  var G = window.GovGis;
  var PER_LAYER = 10;
  G.addText({ zh: { searchResults: "搜索结果", layer: "图层", name: "名称" }, en: { searchResults: "Search results", layer: "Layer", name: "Name" } });

  function cqlText(value) { return "'%" + value.replace(/'/g, "''") + "%'"; }
  G.search = function (q) {
    q = (q || "").trim();
    if (!q) return Promise.resolve([]);
    var defs = G.state.order.map(function (id) { return G.state.layers[id].def; })
      .filter(function (d) { return d.searchable && d.searchable.length; });
    G.message(G.t("loading"));
    return Promise.all(defs.map(function (def) {
      var filter = def.searchable.map(function (f) { return f + " LIKE " + cqlText(q); }).join(" OR ");
      return G.api(def.items + "?" + G.qs({ filter: filter, "filter-lang": "cql2-text", limit: PER_LAYER }))
        .then(function (fc) { return { def: def, features: fc.features || [] }; })
        .catch(function () { return { def: def, features: [] }; });
    })).then(function (groups) {
      G.message("");
      var rows = [];
      groups.forEach(function (g) {
        g.features.forEach(function (f) {
          var p = f.properties || {};
          var label = g.def.searchable.map(function (k) { return p[k]; }).filter(function (v) { return v !== null && v !== undefined && v !== ""; }).slice(0, 3).join(" · ");
          rows.push({ cells: [G.title(g.def.title), label], attrs: { "data-layer": g.def.id, "data-id": String(f.id) },
            onclick: function () {
              if (!G.state.layers[g.def.id].on) G.setLayerVisible(g.def.id, true);
              G.highlight(f); G.zoomToGeoJSON(f);
            } });
        });
      });
      var box = rows.length ? G.table([G.t("layer"), G.t("name")], rows, { id: "gg-search-table" })
        : G.el("p", { class: "gg-empty", text: G.t("noResult") });
      G.showResults(G.t("searchResults") + " — " + q + " (" + rows.length + ")", box);
      G.state.lastSearch = groups.map(function (g) { return { layer: g.def.id, count: g.features.length }; });
      return rows;
    });
  };
  G.registerTool({
    id: "search", module: "common", button: false,
    init: function () {
      document.getElementById("gg-search-form").addEventListener("submit", function (e) {
        e.preventDefault();
        G.search(document.getElementById("gg-search").value);
      });
    }
  });
})();
