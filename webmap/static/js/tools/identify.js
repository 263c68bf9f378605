/* Identify: click the map → a popup at the click, one feature at a time (next / previous), with the
   layer's name, its field titles and formatted values (areas with units, local dates, code → name);
   personal fields appear exactly as the server masked them for the caller's key. The feature's outline
   is highlighted (never a fill: the urban boundary covers the city) until the popup closes.
   With an as-of date set, the cadastre answers for that date. */
(function () {
  "use strict";
  var G = window.GovGis;
  G.addText({
    zh: { identify: "查询属性", identifyEmpty: "此处没有可查询的要素", previous: "上一个", next: "下一个", zoomTo: "定位",
      maskedNote: "个人信息已按您的权限隐去", asOfNote: "历史时点 {d} 的登记状态" },
    en: { identify: "Identify", identifyEmpty: "Nothing to identify here", previous: "Previous", next: "Next", zoomTo: "Zoom to",
      maskedNote: "Personal data masked for your key", asOfNote: "Register as of {d}" }
  });
  var popup = null;

  function clickTolerance(latlng) {
    return Math.min(1000, Math.max(0.5, 5 * G.metresPerPixel(latlng.lat)));
  }
  /* the layers to ask: those drawn at this zoom, top-most first (a click means what is seen) */
  function askedLayers() {
    var z = G.map.getZoom();
    return G.state.order.slice().reverse().filter(function (id) {
      var e = G.state.layers[id];
      return e.on && !e.def.raster && z >= e.def.min_zoom;
    });
  }
  function historyAsOf(latlng, tolerance, date) {
    // /query/identify has no datetime: the history layer answers through its items with bbox + datetime
    var dLat = tolerance / 111320, dLon = tolerance / (111320 * Math.cos(latlng.lat * Math.PI / 180));
    var bbox = [latlng.lng - dLon, latlng.lat - dLat, latlng.lng + dLon, latlng.lat + dLat].map(function (v) { return v.toFixed(7); }).join(",");
    return G.api("/collections/cadastre_parcels/items?" + G.qs({ bbox: bbox, datetime: G.asOfInstant(date), limit: 50 }),
      { where: false });
  }
  G.identifyAt = function (latlng) {
    var tolerance = clickTolerance(latlng);
    var layers = askedLayers();
    var asOf = G.state.asOf;
    var plain = layers.filter(function (id) { return !(asOf && id === "cadastre_parcels"); });
    var params = { x: latlng.lng.toFixed(7), y: latlng.lat.toFixed(7), crs: "CRS84", tolerance: tolerance.toFixed(2) };
    if (plain.length) params.layers = plain.join(",");
    G.state.lastIdentifyParams = params;
    openPopup(latlng, G.el("p", { class: "gg-hint", text: G.t("loading") }));
    var asks = [plain.length ? G.api("/query/identify?" + G.qs(params), { where: false }) : Promise.resolve({ layers: {} })];
    if (asOf && layers.indexOf("cadastre_parcels") >= 0) asks.push(historyAsOf(latlng, tolerance, asOf));
    return Promise.all(asks).then(function (answers) {
      var body = answers[0];
      if (answers[1]) body.layers.cadastre_parcels = answers[1];
      G.state.lastIdentify = body;
      var hits = [], here = G.toProjected(latlng);
      layers.forEach(function (id) {
        var fc = body.layers[id];
        // nearest first within a layer: the valve under the cursor before the one 6 m away
        var found = (fc && fc.features || []).map(function (f) { return { layer: id, feature: f, d: distanceTo(here, f.geometry) }; });
        found.sort(function (a, b) { return a.d - b.d; });
        hits = hits.concat(found);
      });
      G.state.lastIdentifyHits = hits.map(function (h) { return { layer: h.layer, id: h.feature.id }; });
      if (!hits.length) { openPopup(latlng, G.el("p", { class: "gg-empty", id: "gg-identify", text: G.t("identifyEmpty") })); G.highlight(null); return body; }
      showHit(latlng, hits, 0);
      return body;
    }).catch(function (err) {
      var box = G.el("div", { id: "gg-identify" });
      openPopup(latlng, box);
      G.showProblem(box, err, G.t("identify"));
    });
  };
  /* plane distance (storage CRS metres) from a point to a GeoJSON geometry; 0 inside a polygon */
  function distanceTo(p, geometry) {
    if (!geometry) return Infinity;
    var best = Infinity;
    function seg(a, b) {
      var dx = b[0] - a[0], dy = b[1] - a[1], len = dx * dx + dy * dy;
      var t = len ? Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len)) : 0;
      best = Math.min(best, Math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy));
    }
    function line(coords) {
      var pts = coords.map(function (c) { return proj4("EPSG:4326", G.config.storageCrs, [c[0], c[1]]); });
      if (pts.length === 1) best = Math.min(best, Math.hypot(p[0] - pts[0][0], p[1] - pts[0][1]));
      for (var i = 1; i < pts.length; i++) seg(pts[i - 1], pts[i]);
      return pts;
    }
    function inside(ring) {
      var c = false;
      for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
        if ((ring[i][1] > p[1]) !== (ring[j][1] > p[1]) &&
            p[0] < (ring[j][0] - ring[i][0]) * (p[1] - ring[i][1]) / (ring[j][1] - ring[i][1]) + ring[i][0]) c = !c;
      }
      return c;
    }
    function polygon(rings) {
      var outer = line(rings[0]);
      if (inside(outer) && !rings.slice(1).some(function (r) { return inside(line(r)); })) best = 0;
      rings.slice(1).forEach(line);
    }
    var t = geometry.type, c = geometry.coordinates;
    if (t === "Point") line([c]);
    else if (t === "MultiPoint" || t === "LineString") line(c);
    else if (t === "MultiLineString") c.forEach(line);
    else if (t === "Polygon") polygon(c);
    else if (t === "MultiPolygon") c.forEach(polygon);
    return best;
  }
  function openPopup(latlng, node) {
    if (!popup) {
      popup = L.popup({ maxWidth: 380, minWidth: 260, maxHeight: 340, autoPanPadding: [30, 30], className: "gg-popup" });
      popup.on("remove", function () { G.highlight(null); });
    }
    popup.setLatLng(latlng).setContent(node);
    if (!G.map.hasLayer(popup)) popup.openOn(G.map);
    else popup.update();
    return popup;
  }
  G.closeIdentify = function () { if (popup && G.map.hasLayer(popup)) G.map.closePopup(popup); };

  /* the popup of hit i: layer name, i/n with previous/next, titled and formatted fields */
  function showHit(latlng, hits, i) {
    var hit = hits[i], f = hit.feature, entry = G.state.layers[hit.layer], def = entry ? entry.def : { fields: {} };
    var props = f.properties || {};
    var rows = [], masked = false;
    Object.keys(def.fields || {}).forEach(function (name) {
      var spec = def.fields[name];
      if (spec.hidden || !(name in props)) return;
      var value = props[name];
      if (spec.personal && typeof value === "string" && value.indexOf("*") >= 0) masked = true;
      rows.push({ cells: [G.title(spec), G.fmtValue(def, name, value, props)], attrs: { "data-field": name } });
    });
    var nav = G.el("div", { class: "gg-popup-nav" });
    if (hits.length > 1) {
      var prev = G.el("button", { class: "gg-btn gg-mini", "data-nav": "prev", title: G.t("previous"), text: "‹" });
      var next = G.el("button", { class: "gg-btn gg-mini", "data-nav": "next", title: G.t("next"), text: "›" });
      prev.disabled = i === 0; next.disabled = i === hits.length - 1;
      prev.addEventListener("click", function (e) { L.DomEvent.stop(e); showHit(latlng, hits, i - 1); });
      next.addEventListener("click", function (e) { L.DomEvent.stop(e); showHit(latlng, hits, i + 1); });
      nav.appendChild(prev);
      nav.appendChild(G.el("span", { class: "gg-popup-count", "data-position": (i + 1) + "/" + hits.length, text: (i + 1) + " / " + hits.length }));
      nav.appendChild(next);
    }
    var zoom = G.el("button", { class: "gg-btn gg-mini", "data-zoom-to": "1", text: G.t("zoomTo") });
    zoom.addEventListener("click", function (e) { L.DomEvent.stop(e); G.zoomToGeoJSON(f); });
    nav.appendChild(zoom);
    var box = G.el("div", { id: "gg-identify", "data-layer": hit.layer, "data-id": String(f.id) }, [
      G.el("div", { class: "gg-popup-head" }, [G.el("strong", { class: "gg-popup-layer", "data-identify-layer": hit.layer, text: G.title(def.title) || hit.layer }), nav]),
      G.state.asOf && hit.layer === "cadastre_parcels" ? G.el("p", { class: "gg-hint", "data-asof-note": G.state.asOf, text: G.t("asOfNote", { d: G.fmtDate(G.state.asOf) }) }) : null,
      G.table([G.t("field"), G.t("value")], rows, { class: "gg-table gg-identify-feature", "data-layer": hit.layer, "data-id": String(f.id) }),
      masked ? G.el("p", { class: "gg-hint", text: G.t("maskedNote") }) : null]);
    G.highlight(f);
    G.state.identifyIndex = i;
    openPopup(latlng, box);
  }
  G.registerTool({
    id: "identify", module: "common", title: { zh: "查询属性", en: "Identify" },
    onMapClick: function (e) { G.identifyAt(e.latlng); },
    deactivate: function () { G.closeIdentify(); G.highlight(null); }
  });
})();
