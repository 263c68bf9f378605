/* Search: suggestions while typing (debounced: parcel codes and addresses, pipe and valve codes, road
   names), coordinates to go to (CGCS2000 X/Y in the storage CRS, or lon/lat — recognised by their
   size, with a hint saying how they were read), and a full search (Enter / 搜索) over every layer the
   caller may read, on its declared searchable fields (CQL2 LIKE over /collections). */
(function () {
  "use strict";
  var G = window.GovGis;
  var PER_LAYER = 10, SUGGEST_PER_LAYER = 5, DEBOUNCE_MS = 350;
  G.addText({
    zh: { searchResults: "搜索结果", layer: "图层", name: "名称", goTo: "转到此坐标", coordsLonLat: "识别为经纬度（CGCS2000）：东经 {lon}°，北纬 {lat}°",
      coordsProjected: "识别为 CGCS2000 投影坐标（{crs}）：X（北）{x}，Y（东）{y}", coordsOutside: "坐标不在本市范围内：请检查 X/Y 是否写反或少了位数",
      coordsHint: "可输入坐标：经纬度如 118.125, 24.487；或 CGCS2000 投影坐标 X, Y 如 2709693.7, 614040.7", noSuggestion: "没有匹配的宗地、地址或管线编号，按回车全文搜索",
      searching: "正在查找…", coordPoint: "坐标点" },
    en: { searchResults: "Search results", layer: "Layer", name: "Name", goTo: "Go to these coordinates", coordsLonLat: "Read as lon/lat (CGCS2000): {lon}°E, {lat}°N",
      coordsProjected: "Read as CGCS2000 projected ({crs}): X (north) {x}, Y (east) {y}", coordsOutside: "These coordinates are outside the city: check whether X and Y are swapped or digits missing",
      coordsHint: "Coordinates work too: lon/lat such as 118.125, 24.487, or CGCS2000 projected X, Y such as 2709693.7, 614040.7", noSuggestion: "No parcel, address or pipe code matches; press Enter for a full search",
      searching: "Searching…", coordPoint: "Point" }
  });

  function cqlText(value) { return "'" + value.replace(/'/g, "''") + "'"; }
  function like(field, pattern) { return field + " LIKE " + cqlText(pattern); }

  /* ---------- coordinates: which kind, by the size of the numbers ---------- */
  G.parseCoordinates = function (text) {
    var m = /^\s*(-?\d+(?:\.\d+)?)\s*[,，;；\s]\s*(-?\d+(?:\.\d+)?)\s*$/.exec(text || "");
    if (!m) return null;
    var a = Number(m[1]), b = Number(m[2]), b0 = G.config.bounds;
    var inCity = function (ll) { return ll.lng >= b0[0] - 0.2 && ll.lng <= b0[2] + 0.2 && ll.lat >= b0[1] - 0.2 && ll.lat <= b0[3] + 0.2; };
    if (Math.abs(a) <= 180 && Math.abs(b) <= 180) {
      var ll = (a > 60 && b < 60) ? L.latLng(b, a) : L.latLng(a, b);  // China: longitude 73–135, latitude 3–54
      return { kind: "lonlat", latlng: ll, inside: inCity(ll), hint: G.t("coordsLonLat", { lon: ll.lng.toFixed(6), lat: ll.lat.toFixed(6) }) };
    }
    // projected: the northing (X) is the seven-digit one; an eight-digit easting carries the zone number
    // (CGCS2000 axis order is X first; a pair written Y, X is recognised by which one is the northing)
    var isNorthing = function (v) { return Math.abs(v) >= 1e6 && Math.abs(v) < 1e7; };
    var north = a, east = b;
    if (isNorthing(b) && !isNorthing(a)) { north = b; east = a; }
    if (Math.abs(east) >= 1e6) east = east % 1e6;  // 39614040.7 (zone 39 prefixed) → 614040.7
    var point = G.fromProjected(east, north);
    return { kind: "projected", latlng: point, inside: inCity(point), x: north, y: east,
      hint: G.t("coordsProjected", { crs: G.config.storageCrs, x: north.toFixed(2), y: east.toFixed(2) }) };
  };
  var goToMarker = null;
  G.goToCoordinates = function (parsed) {
    if (goToMarker) G.map.removeLayer(goToMarker);
    G.map.setView(parsed.latlng, Math.max(G.map.getZoom(), 17));
    goToMarker = L.circleMarker(parsed.latlng, { pane: "gg-marker", radius: 8, color: "#d7191c", weight: 3, fillColor: "#fff", fillOpacity: 1, className: "gg-goto" })
      .bindTooltip(parsed.hint, { permanent: true, direction: "top", offset: [0, -8] }).addTo(G.map);
    G.state.lastGoTo = { lat: parsed.latlng.lat, lng: parsed.latlng.lng, kind: parsed.kind };
  };

  /* ---------- suggestions while typing ---------- */
  function suggestLayers(q) {
    var readable = function (id) { return G.state.layers[id] && !G.state.layers[id].def.raster; };
    var asks = [];
    var upper = q.toUpperCase();
    if (/^\d{4,}[0-9A-Z]*$/.test(upper) && readable("cadastre_parcels")) asks.push({ id: "cadastre_parcels", filter: like("parcel_code", upper + "%"), label: ["parcel_code", "address"] });
    if (/^[A-Z]{1,4}\d{2,}$/.test(upper)) {
      if (readable("pipeline_pipes")) asks.push({ id: "pipeline_pipes", filter: like("code", upper + "%"), label: ["code", "material"] });
      if (readable("pipeline_nodes")) asks.push({ id: "pipeline_nodes", filter: like("code", upper + "%"), label: ["code", "kind"] });
    }
    if (!asks.length && q.length >= 2) {
      if (readable("cadastre_parcels")) asks.push({ id: "cadastre_parcels", filter: like("address", "%" + q + "%"), label: ["address", "parcel_code"] });
      if (readable("emergency_roads")) asks.push({ id: "emergency_roads", filter: like("name", "%" + q + "%"), label: ["name"] });
    }
    return asks;
  }
  var suggestTimer = null, suggestAbort = null, current = -1;
  function suggestBox() { return document.getElementById("gg-suggest"); }
  function hideSuggestions() { suggestBox().className = "gg-hidden"; suggestBox().innerHTML = ""; current = -1; }
  function showFeature(layerId, f) {
    if (G.state.layers[layerId] && !G.state.layers[layerId].on) G.setLayerVisible(layerId, true);
    G.highlight(f);
    if (f.geometry && f.geometry.type === "Point") G.map.setView([f.geometry.coordinates[1], f.geometry.coordinates[0]], Math.max(G.map.getZoom(), 18));
    else G.zoomToGeoJSON(f);
  }
  G.suggest = function (q) {
    q = (q || "").trim();
    var box = suggestBox();
    if (suggestAbort) suggestAbort.abort();
    if (q.length < 2) { hideSuggestions(); return Promise.resolve([]); }
    box.innerHTML = ""; box.className = "";
    var coords = G.parseCoordinates(q);
    if (coords) {
      box.appendChild(G.el("div", { class: "gg-suggest-hint", "data-coords": coords.kind, text: coords.inside ? coords.hint : G.t("coordsOutside") }));
      if (coords.inside) {
        var go = G.el("div", { class: "gg-suggest-item", role: "option", "data-goto": coords.kind }, [G.t("goTo")]);
        go.addEventListener("mousedown", function (e) { e.preventDefault(); hideSuggestions(); G.goToCoordinates(coords); });
        box.appendChild(go);
      }
      G.state.lastSuggest = { coords: coords.kind, inside: coords.inside };
      return Promise.resolve([coords]);
    }
    var asks = suggestLayers(q);
    if (!asks.length) { box.appendChild(G.el("div", { class: "gg-suggest-hint", text: G.t("coordsHint") })); return Promise.resolve([]); }
    box.appendChild(G.el("div", { class: "gg-suggest-hint", text: G.t("searching") }));
    suggestAbort = new AbortController();
    var signal = suggestAbort.signal;
    return Promise.all(asks.map(function (ask) {
      var def = G.state.layers[ask.id].def;
      return G.api(def.items + "?" + G.qs({ filter: ask.filter, "filter-lang": "cql2-text", limit: SUGGEST_PER_LAYER }), { where: false, signal: signal })
        .then(function (fc) { return { ask: ask, def: def, features: fc.features || [] }; });
    })).then(function (groups) {
      box.innerHTML = "";
      var items = [];
      groups.forEach(function (g) {
        g.features.forEach(function (f) {
          var p = f.properties || {};
          var text = g.ask.label.map(function (k) { return k === "kind" ? G.fmtValue(g.def, k, p[k], p) : p[k]; })
            .filter(function (v) { return v !== null && v !== undefined && v !== ""; }).join(" · ");
          var item = G.el("div", { class: "gg-suggest-item", role: "option", "data-layer": g.def.id, "data-id": String(f.id) },
            [G.el("small", { text: G.title(g.def.title) }), G.el("span", { text: text })]);
          item.addEventListener("mousedown", function (e) { e.preventDefault(); hideSuggestions(); showFeature(g.def.id, f); });
          box.appendChild(item);
          items.push({ layer: g.def.id, id: f.id });
        });
      });
      if (!items.length) box.appendChild(G.el("div", { class: "gg-suggest-hint", text: G.t("noSuggestion") }));
      G.state.lastSuggest = { q: q, items: items };
      return items;
    }).catch(function (err) {
      if (err && err.name === "AbortError") return [];
      box.innerHTML = "";
      G.showProblem(box, err, G.t("search"));
      return [];
    });
  };
  function moveCurrent(step) {
    var items = suggestBox().querySelectorAll(".gg-suggest-item");
    if (!items.length) return;
    current = (current + step + items.length) % items.length;
    items.forEach(function (n, i) { n.classList.toggle("gg-current", i === current); });
  }

  /* ---------- full search (Enter / the 搜索 button) ---------- */
  G.search = function (q) {
    q = (q || "").trim();
    hideSuggestions();
    if (!q) return Promise.resolve([]);
    var coords = G.parseCoordinates(q);
    if (coords && coords.inside) { G.goToCoordinates(coords); return Promise.resolve([coords]); }
    var defs = G.state.order.map(function (id) { return G.state.layers[id].def; })
      .filter(function (d) { return d.searchable && d.searchable.length; });
    G.message(G.t("loading"));
    return Promise.all(defs.map(function (def) {
      var filter = def.searchable.map(function (f) { return like(f, "%" + q + "%"); }).join(" OR ");
      return G.api(def.items + "?" + G.qs({ filter: filter, "filter-lang": "cql2-text", limit: PER_LAYER }), { where: false })
        .then(function (fc) { return { def: def, features: fc.features || [] }; })
        .catch(function () { return { def: def, features: [] }; });
    })).then(function (groups) {
      G.message("");
      var rows = [];
      groups.forEach(function (g) {
        g.features.forEach(function (f) {
          var p = f.properties || {};
          var label = g.def.searchable.map(function (k) { return p[k] === undefined ? null : G.fmtValue(g.def, k, p[k], p); })
            .filter(function (v) { return v !== null && v !== "—" && v !== ""; }).slice(0, 3).join(" · ");
          rows.push({ cells: [G.title(g.def.title), label], attrs: { "data-layer": g.def.id, "data-id": String(f.id) },
            onclick: function () { showFeature(g.def.id, f); } });
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
      var input = document.getElementById("gg-search");
      document.getElementById("gg-search-form").addEventListener("submit", function (e) {
        e.preventDefault();
        var items = suggestBox().querySelectorAll(".gg-suggest-item");
        if (current >= 0 && items[current]) { items[current].dispatchEvent(new MouseEvent("mousedown")); return; }
        clearTimeout(suggestTimer);
        G.search(input.value);
      });
      input.addEventListener("input", function () {
        clearTimeout(suggestTimer);
        suggestTimer = setTimeout(function () { G.suggest(input.value); }, DEBOUNCE_MS);
      });
      input.addEventListener("keydown", function (e) {
        if (e.key === "ArrowDown") { e.preventDefault(); moveCurrent(1); }
        else if (e.key === "ArrowUp") { e.preventDefault(); moveCurrent(-1); }
        else if (e.key === "Escape") hideSuggestions();
      });
      input.addEventListener("blur", function () { setTimeout(hideSuggestions, 200); });
    }
  });
})();
