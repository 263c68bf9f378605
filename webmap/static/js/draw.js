/* govgis web map — drawing a line or polygon by clicking (measure, red lines, balance areas).
   GovGis.draw("polygon", {onChange}) resolves with the vertices when the user double-clicks (or
   presses Enter, or GovGis.draw.finish() is called) and rejects on Escape / cancel. */
(function () {
  "use strict";
  var G = (window.GovGis = window.GovGis || {});
  var session = null;

  G.draw = function (kind, options) {
    G.draw.cancel();
    options = options || {};
    return new Promise(function (resolve, reject) {
      var map = G.map, points = [];
      var shape = kind === "polygon"
        ? L.polygon([], { pane: "gg-highlight", color: "#d7191c", weight: 3, dashArray: "6 4", fillOpacity: 0.1 })
        : L.polyline([], { pane: "gg-highlight", color: "#d7191c", weight: 3, dashArray: "6 4" });
      var vertices = L.layerGroup();
      shape.addTo(map); vertices.addTo(map);
      map.doubleClickZoom.disable();
      map.getContainer().classList.add("gg-drawing");
      G.drawing = true;
      function changed() {
        shape.setLatLngs(points);
        if (options.onChange) options.onChange(points.slice());
      }
      function onClick(e) {
        var last = points[points.length - 1];
        if (last && last.equals(e.latlng)) return;  // the second click of a double-click
        points.push(e.latlng);
        vertices.addLayer(L.circleMarker(e.latlng, { pane: "gg-highlight", radius: 4, color: "#d7191c", weight: 2, fillOpacity: 1 }));
        changed();
      }
      function onKey(e) {
        if (e.key === "Escape") finish(false);
        if (e.key === "Enter") finish(true);
      }
      function cleanup() {
        map.off("click", onClick); map.off("dblclick", onDbl);
        document.removeEventListener("keydown", onKey);
        map.getContainer().classList.remove("gg-drawing");
        setTimeout(function () { map.doubleClickZoom.enable(); G.drawing = false; }, 0);
        map.removeLayer(vertices);
        if (!options.keep) map.removeLayer(shape);
        session = null;
      }
      function finish(ok) {
        cleanup();
        var need = kind === "polygon" ? 3 : 2;
        if (ok && points.length >= need) resolve({ latlngs: points, layer: shape });
        else { if (options.keep) map.removeLayer(shape); reject(new Error("cancelled")); }
      }
      function onDbl(e) { L.DomEvent.stop(e); finish(true); }
      map.on("click", onClick); map.on("dblclick", onDbl);
      document.addEventListener("keydown", onKey);
      session = { finish: finish };
    });
  };
  G.draw.finish = function () { if (session) session.finish(true); };
  G.draw.cancel = function () { if (session) session.finish(false); };

  /* Plane length and area in the storage CRS (CGCS2000 Gauss-Krüger metres), the figures a cadastral
     survey reports — not spherical Web-Mercator distances. */
  G.planeLength = function (latlngs, closed) {
    var pts = latlngs.map(G.toProjected), total = 0;
    var n = pts.length;
    for (var i = 1; i < n + (closed ? 1 : 0); i++) {
      var a = pts[i - 1], b = pts[i % n];
      total += Math.hypot(b[0] - a[0], b[1] - a[1]);
    }
    return total;
  };
  G.planeArea = function (latlngs) {
    var pts = latlngs.map(G.toProjected), sum = 0;
    for (var i = 0; i < pts.length; i++) {
      var a = pts[i], b = pts[(i + 1) % pts.length];
      sum += a[0] * b[1] - b[0] * a[1];
    }
    return Math.abs(sum) / 2;
  };
  G.toGeoJSONPolygon = function (latlngs) {
    var ring = latlngs.map(function (p) { return [p.lng, p.lat]; });
    ring.push(ring[0]);
    return { type: "Polygon", coordinates: [ring] };
  };
})();
