/* govgis web map — drawing a line or polygon by clicking (measure, red lines, balance areas).
   GovGis.draw("polygon", {onChange}) resolves with the vertices when the user double-clicks (or
   presses Enter, or GovGis.draw.finish() is called) and rejects on Escape / cancel.
   A polygon may not cross itself: a click that would make an edge cross another is refused on the
   spot (the edge to the cursor turns red and the reason is shown), instead of the server refusing the
   finished red line later with raw coordinates. The drawn length or area is shown as you draw. */
(function () {
  "use strict";
  var G = (window.GovGis = window.GovGis || {});
  G.addText({
    zh: { selfIntersects: "此点会使边界自相交，已拒绝：请换一个位置（红线不能交叉）", drawHint: "单击添加节点，双击或回车结束，Esc 取消" },
    en: { selfIntersects: "That point would make the outline cross itself and was refused: pick another place", drawHint: "Click to add points, double-click or Enter to finish, Esc to cancel" }
  });
  var session = null;

  /* do segments ab and cd meet (cross, touch or overlap) in plane coordinates? Only ever asked of
     edges that share no vertex, so touching is as bad as crossing. */
  function orient(a, b, c) { var v = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]); return Math.abs(v) < 1e-6 ? 0 : (v > 0 ? 1 : -1); }
  function onSegment(a, b, p) {
    return Math.min(a[0], b[0]) - 1e-6 <= p[0] && p[0] <= Math.max(a[0], b[0]) + 1e-6 &&
      Math.min(a[1], b[1]) - 1e-6 <= p[1] && p[1] <= Math.max(a[1], b[1]) + 1e-6;
  }
  function segmentsMeet(a, b, c, d) {
    var o1 = orient(a, b, c), o2 = orient(a, b, d), o3 = orient(c, d, a), o4 = orient(c, d, b);
    if (o1 !== o2 && o3 !== o4) return true;
    return (o1 === 0 && onSegment(a, b, c)) || (o2 === 0 && onSegment(a, b, d)) ||
      (o3 === 0 && onSegment(c, d, a)) || (o4 === 0 && onSegment(c, d, b));
  }
  /* would adding vertex p to the chain v0…v(n-1) make the polygon cross itself? The new edge
     v(n-1)→p may not meet edges e0…e(n-3); the closing edge p→v0 may not meet e1…e(n-2). */
  G.wouldSelfIntersect = function (latlngs, candidate) {
    var pts = latlngs.map(G.toProjected), p = G.toProjected(candidate), n = pts.length;
    if (n < 2) return false;
    var last = pts[n - 1], first = pts[0];
    for (var i = 0; i + 1 < n; i++) {
      var a = pts[i], b = pts[i + 1];
      if (i <= n - 3 && segmentsMeet(last, p, a, b)) return true;
      if (i >= 1 && segmentsMeet(p, first, a, b)) return true;
    }
    return false;
  };

  G.draw = function (kind, options) {
    G.draw.cancel();
    options = options || {};
    return new Promise(function (resolve, reject) {
      var map = G.map, points = [];
      var shape = kind === "polygon"
        ? L.polygon([], { pane: "gg-highlight", color: "#d7191c", weight: 3, dashArray: "6 4", fillOpacity: 0.1 })
        : L.polyline([], { pane: "gg-highlight", color: "#d7191c", weight: 3, dashArray: "6 4" });
      var rubber = L.polyline([], { pane: "gg-highlight", color: "#555", weight: 2, dashArray: "2 4", interactive: false, className: "gg-rubber" });
      var vertices = L.layerGroup();
      var label = L.tooltip({ permanent: true, direction: "right", offset: [12, 0], className: "gg-draw-label" });
      shape.addTo(map); vertices.addTo(map); rubber.addTo(map);
      map.doubleClickZoom.disable();
      map.getContainer().classList.add("gg-drawing");
      G.drawing = true;
      G.message(G.t("drawHint"));
      function measureText(pts) {
        if (kind === "polygon") return pts.length >= 3 ? G.fmtArea(G.planeArea(pts), true) : "";
        return pts.length >= 2 ? G.fmtLength(G.planeLength(pts, false)) : "";
      }
      function changed() {
        shape.setLatLngs(points);
        var text = measureText(points);
        if (text && points.length) { label.setLatLng(points[points.length - 1]).setContent(text); if (!map.hasLayer(label)) label.addTo(map); }
        if (options.onChange) options.onChange(points.slice());
      }
      function refuse(latlng) {
        G.state.drawRefused = (G.state.drawRefused || 0) + 1;
        var flash = L.polyline([points[points.length - 1], latlng], { pane: "gg-highlight", color: "#ff0000", weight: 4, className: "gg-refused" }).addTo(map);
        setTimeout(function () { map.removeLayer(flash); }, 1500);
        G.message(G.t("selfIntersects"), true);
        if (options.onRefuse) options.onRefuse(G.t("selfIntersects"));
      }
      function onClick(e) {
        var last = points[points.length - 1];
        if (last && last.equals(e.latlng)) return;  // the second click of a double-click
        if (kind === "polygon" && G.wouldSelfIntersect(points, e.latlng)) { refuse(e.latlng); return; }
        points.push(e.latlng);
        vertices.addLayer(L.circleMarker(e.latlng, { pane: "gg-highlight", radius: 4, color: "#d7191c", weight: 2, fillOpacity: 1 }));
        G.message(G.t("drawHint"));
        changed();
      }
      function onMove(e) {
        if (!points.length) return;
        var chain = [points[points.length - 1], e.latlng];
        if (kind === "polygon" && points.length >= 2) chain.push(points[0]);
        rubber.setLatLngs(chain);
        var bad = kind === "polygon" && G.wouldSelfIntersect(points, e.latlng);
        rubber.setStyle({ color: bad ? "#ff0000" : "#555", weight: bad ? 3 : 2 });
      }
      function onKey(e) {
        if (e.key === "Escape") finish(false);
        if (e.key === "Enter") finish(true);
      }
      function cleanup() {
        map.off("click", onClick); map.off("dblclick", onDbl); map.off("mousemove", onMove);
        document.removeEventListener("keydown", onKey);
        map.getContainer().classList.remove("gg-drawing");
        setTimeout(function () { map.doubleClickZoom.enable(); G.drawing = false; }, 0);
        map.removeLayer(vertices); map.removeLayer(rubber);
        if (map.hasLayer(label)) map.removeLayer(label);
        if (!options.keep) map.removeLayer(shape);
        session = null;
      }
      function finish(ok) {
        cleanup();
        var need = kind === "polygon" ? 3 : 2;
        if (ok && points.length >= need) { G.message(""); resolve({ latlngs: points, layer: shape }); }
        else { if (options.keep) map.removeLayer(shape); G.message(""); reject(new Error("cancelled")); }
      }
      function onDbl(e) { L.DomEvent.stop(e); finish(true); }
      map.on("click", onClick); map.on("dblclick", onDbl); map.on("mousemove", onMove);
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
