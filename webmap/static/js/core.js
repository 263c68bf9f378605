/* govgis web map — the core: layers (one vector-tile request per tile for every visible layer),
   symbols and legends, coordinates, URL hash, language, and the tool registry.
   Tools live in js/tools/*.js and call GovGis.registerTool({...}); the page includes only the tools
   whose API endpoints the server has, and shows only those the caller's key may use. */
(function () {
  "use strict";
  var G = (window.GovGis = window.GovGis || {});
  var PANES = { raster: 250, vector: 350, point: 370, highlight: 450, marker: 460 };
  var PALETTE = ["#1f78b4", "#33a02c", "#e31a1c", "#ff7f00", "#6a3d9a", "#b15928", "#a6cee3", "#b2df8a",
    "#fb9a99", "#fdbf6f", "#cab2d6", "#ffff99"];
  // CJJ 61 survey colours by utility, for symbols when no pipe layer states them (verify per city)
  var UTILITY_COLORS = { water: "#00a0e9", drainage: "#8b5a2b", storm: "#8b5a2b", sewer: "#8b5a2b", gas: "#ff69b4",
    heat: "#ff8c00", power: "#e60012", telecom: "#00a651", industrial: "#000000" };
  var TILE_TTL_MS = 5 * 60 * 1000;   // a tile seen in the last five minutes is drawn again without asking
  var TILE_CACHE_SIZE = 400;
  var TILE_DEBOUNCE_MS = 120;        // a tile still wanted after this is fetched (quick zooms skip levels)

  G.tools = G.tools || [];
  G.state = { layers: {}, order: [], activeTool: null, caller: null, allowedTools: null, networks: {}, utilities: {}, codes: {} };
  G.metrics = Object.assign(G.metrics || {}, { start: performance.now(), firstTilesDrawn: null, tileRequests: 0,
    tileLoads: 0, tileFailures: 0, tileCacheHits: 0 });

  /* ---------- events between tools (e.g. a repair-order tool extends the isolation panel) ---------- */
  var listeners = {};
  G.on = function (name, fn) { (listeners[name] = listeners[name] || []).push(fn); };
  G.emit = function (name, data) { (listeners[name] || []).forEach(function (fn) { fn(data); }); };

  /* ---------- tool registry ---------- */
  G.registerTool = function (tool) { G.tools.push(tool); };
  G.tool = function (id) { return G.tools.filter(function (t) { return t.id === id; })[0] || null; };
  /* may the caller's key use this tool (layers.json says, per server-side tool id)? */
  G.allowed = function (gate) {
    if (!gate) return true;
    var allowed = G.state.allowedTools;
    return !allowed || allowed[gate] !== false;
  };

  /* ---------- small helpers ---------- */
  G.el = function (tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "html") node.innerHTML = attrs[k];
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), attrs[k]);
      else if (attrs[k] !== undefined && attrs[k] !== null) node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  };
  G.title = function (obj) { return obj ? (obj[G.lang] || obj.zh || obj.en || "") : ""; };
  G.qs = function (params) {
    return Object.keys(params).filter(function (k) { return params[k] !== undefined && params[k] !== null && params[k] !== ""; })
      .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]); }).join("&");
  };
  G.message = function (text, isError, detail) {
    var node = document.getElementById("gg-message");
    node.textContent = text || "";
    node.title = detail || "";
    node.className = isError ? "gg-error" : "";
  };
  G.viewBbox = function () {
    var b = G.map.getBounds();
    return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(6); }).join(",");
  };
  /* metres per screen pixel at a latitude and zoom (Web Mercator) */
  G.metresPerPixel = function (lat, zoom) {
    return 40075016.686 * Math.cos(lat * Math.PI / 180) / Math.pow(2, (zoom === undefined ? G.map.getZoom() : zoom) + 8);
  };

  /* ---------- coordinates: CGCS2000 projected (storage CRS) and geographic ---------- */
  G.toProjected = function (latlng) {
    return proj4("EPSG:4326", G.config.storageCrs, [latlng.lng, latlng.lat]);  // [easting, northing]
  };
  G.fromProjected = function (easting, northing) {
    var ll = proj4(G.config.storageCrs, "EPSG:4326", [easting, northing]);
    return L.latLng(ll[1], ll[0]);
  };
  function showCoords(latlng) {
    var p = G.toProjected(latlng);
    document.getElementById("gg-coords").textContent =
      G.t("projected") + " (" + G.config.storageCrs + ") X " + p[1].toFixed(2) + "  Y " + p[0].toFixed(2) +
      "  |  " + G.t("geographic") + " " + latlng.lng.toFixed(6) + "°E " + latlng.lat.toFixed(6) + "°N";
  }

  /* ---------- URL hash: #map=zoom/lat/lon&layers=a,b&lang=en (a shared link reopens the same view) ---------- */
  function readHash() {
    var out = {};
    (location.hash || "").replace(/^#/, "").split("&").forEach(function (part) {
      var i = part.indexOf("=");
      if (i > 0) out[decodeURIComponent(part.slice(0, i))] = decodeURIComponent(part.slice(i + 1));
    });
    return out;
  }
  G.writeHash = function () {
    if (!G.map || G.state.restoring) return;
    var c = G.map.getCenter();
    var visible = G.state.order.filter(function (id) { return G.state.layers[id].on; });
    var hash = "#map=" + G.map.getZoom() + "/" + c.lat.toFixed(5) + "/" + c.lng.toFixed(5) +
      "&layers=" + visible.join(",") + "&lang=" + G.lang;
    if (location.hash !== hash) history.replaceState(null, "", hash);
  };

  /* ---------- styles ---------- */
  function legendColor(def, code) {
    var rows = def.legend || [];
    var c = String(code == null ? "" : code);
    for (var i = 0; i < rows.length; i++) if (c === rows[i].code || c.slice(0, 2) === rows[i].code) return rows[i].color;
    return null;
  }
  function categorical(value) {
    var s = String(value), h = 0;
    for (var i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
    return PALETTE[h % PALETTE.length];
  }
  G.utilityColor = function (utility) {
    for (var id in G.state.layers) {
      var st = G.state.layers[id].def.style || {};
      if (st.by === "utility" && st.colors && st.colors[utility]) return st.colors[utility];
    }
    return UTILITY_COLORS[utility] || "#555555";
  };
  G.utilityOf = function (def, props) {
    if (!def.lookup) return null;
    return def.lookup.values[String(props[def.lookup.field])] || null;
  };
  G.featureColor = function (def, props) {
    var st = def.style || {};
    if (st.by) {
      var v = props[st.by];
      if ((v === undefined || v === null) && def.lookup) v = def.lookup.values[String(props[def.lookup.field])];
      if (st.colors && st.colors[v]) return st.colors[v];
      if (v !== undefined && v !== null && !st.color) return categorical(v);
    }
    if (st.legend && st.fill) return legendColor(def, props[st.fill]) || "#cccccc";
    if (st.fill && !st.color) return categorical(props[st.fill]);
    return st.color || "#3366cc";
  };
  function kindOf(def) {
    var gt = def.geometry_type || "";
    if (gt.indexOf("Point") >= 0) return "point";
    if (gt.indexOf("LineString") >= 0) return "line";
    if (gt === "Raster") return "raster";
    return "fill";
  }
  G.kindOf = kindOf;

  /* pipe-node symbols: one shape per kind, in the utility's colour, as small SVG images */
  var SHAPES = {
    "bowtie": '<path d="M2 3L9 9L2 15ZM16 3L9 9L16 15Z" fill="C" stroke="#fff" stroke-width="1.2" stroke-linejoin="round"/>',
    "bowtie-bar": '<path d="M2 3L9 9L2 15ZM16 3L9 9L16 15Z" fill="C" stroke="#fff" stroke-width="1.2"/><path d="M9 2V16" stroke="#222" stroke-width="1.6"/>',
    "triangle": '<path d="M9 2L16 15H2Z" fill="C" stroke="#fff" stroke-width="1.2" stroke-linejoin="round"/><circle cx="9" cy="11" r="1.8" fill="#fff"/>',
    "dot": '<circle cx="9" cy="9" r="4" fill="C" stroke="#fff" stroke-width="1.2"/>',
    "square": '<rect x="3.5" y="3.5" width="11" height="11" fill="C" stroke="#fff" stroke-width="1.2"/><path d="M6 12L12 6" stroke="#fff" stroke-width="1.4"/>',
    "star": '<path d="M9 1.5L11.2 6.6L16.5 7L12.4 10.5L13.7 15.8L9 13L4.3 15.8L5.6 10.5L1.5 7L6.8 6.6Z" fill="C" stroke="#fff"/>',
    "ring": '<circle cx="9" cy="9" r="5.5" fill="#fff" stroke="C" stroke-width="3"/>',
    "diamond": '<path d="M9 1.5L16.5 9L9 16.5L1.5 9Z" fill="C" stroke="#fff" stroke-width="1.2"/>',
    "small-dot": '<circle cx="9" cy="9" r="2.4" fill="C" stroke="#fff" stroke-width="0.8"/>',
    // emergency symbols (resources by kind, incidents by category): drawn in the status colour
    "house": '<path d="M9 1.5L16.5 8V16.5H1.5V8Z" fill="C" stroke="#fff" stroke-width="1.2" stroke-linejoin="round"/>',
    "shield": '<path d="M9 1.5L16 4V9C16 13 12.5 15.6 9 16.8C5.5 15.6 2 13 2 9V4Z" fill="C" stroke="#fff" stroke-width="1.2" stroke-linejoin="round"/>',
    "truck": '<rect x="1.5" y="4" width="15" height="9.5" rx="2" fill="C" stroke="#fff" stroke-width="1.2"/><circle cx="5" cy="15" r="1.8" fill="#333" stroke="#fff" stroke-width="0.8"/><circle cx="13" cy="15" r="1.8" fill="#333" stroke="#fff" stroke-width="0.8"/>',
    "cross": '<path d="M6 1.5H12V6H16.5V12H12V16.5H6V12H1.5V6H6Z" fill="C" stroke="#fff" stroke-width="1.2" stroke-linejoin="round"/>',
    "burst": '<path d="M9 0.8L11 5.5L15.8 3.2L13.5 8L17.5 10L12.8 11.8L14.5 17L9 13.8L3.5 17L5.2 11.8L0.5 10L4.5 8L2.2 3.2L7 5.5Z" fill="C" stroke="#fff" stroke-width="1" stroke-linejoin="round"/>'
  };
  var iconCache = {};
  G.symbolUrl = function (shape, color, glyph) {
    var text = glyph ? '<text x="9" y="' + (shape === "truck" ? 11.6 : shape === "triangle" ? 13.6 : 12.4) + '" text-anchor="middle" font-size="' +
      (glyph.length > 2 ? 6 : glyph.length > 1 ? 7.5 : 9) + '" font-weight="700" font-family="sans-serif" fill="#fff">' + glyph + "</text>" : "";
    var svg = '<svg xmlns="http://www.w3.org/2000/svg" width="18" height="18" viewBox="0 0 18 18">' +
      (SHAPES[shape] || SHAPES.dot).replace(/="C"/g, '="' + color + '"') + text + "</svg>";
    return "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg);
  };
  /* an emergency point (resource, incident): the shape of its kind, the colour of its status, a glyph
     inside (火 医 搜 … for a resource's capability, I–IV for an incident's level) */
  G.emergencyIcon = function (def, props, zoom) {
    var spec = def.emergency;
    var symbol = spec.symbols.filter(function (s) { return s.kind === String(props[spec.symbol_field]); })[0];
    var status = spec.status_colors.filter(function (s) { return s.status === String(props[spec.status_field]); })[0];
    var shape = symbol ? symbol.shape : "dot", color = status ? status.color : "#555555";
    var glyph = spec.glyphs[String(props[spec.glyph_field])] || "";
    var size = zoom >= 17 ? 26 : zoom >= 15 ? 22 : 18;
    var key = "em" + shape + color + glyph + size;
    if (!iconCache[key]) iconCache[key] = L.icon({ iconUrl: G.symbolUrl(shape, color, glyph), iconSize: [size, size] });
    return iconCache[key];
  };
  G.nodeIcon = function (def, props, zoom) {
    var symbol = (def.symbols || []).filter(function (s) { return s.kind === props.kind; })[0];
    var shape = symbol ? symbol.shape : "dot";
    var color = props.valve_state === "inoperable" ? "#444444" : G.utilityColor(G.utilityOf(def, props));
    // symbols grow as the map zooms in: apart at 16, easy to hit at 18
    var size = Math.round((shape === "small-dot" ? 0.6 : 1) * (zoom >= 18 ? 20 : zoom >= 17 ? 17 : 14));
    var key = shape + color + size;
    if (!iconCache[key]) iconCache[key] = L.icon({ iconUrl: G.symbolUrl(shape, color), iconSize: [size, size] });
    return iconCache[key];
  };
  G.styleFor = function (def, props, zoom) {
    var color = G.featureColor(def, props);
    var st = def.style || {};
    var kind = kindOf(def);
    if (kind === "line") {
      var w = def.id === "emergency_roads" ? ({ arterial: 3.5, secondary: 2.2 }[props.road_class] || 1.2) : 2;
      return { color: def.basemap ? "#8d8578" : color, weight: w, opacity: 0.9, fill: false };
    }
    if (kind === "point") {
      if (def.emergency) return { icon: G.emergencyIcon(def, props, zoom) };
      if (def.symbols && def.symbols.length) return { icon: G.nodeIcon(def, props, zoom) };
      return { radius: zoom >= 16 ? 5 : 4, color: "#ffffff", weight: 1, fill: true, fillColor: color, fillOpacity: 0.95 };
    }
    var classified = Boolean(st.legend);
    var outline = st.fill && !classified ? (st.color || color) : color;
    if (def.id === "emergency_shelters" && props.capacity_persons !== undefined && Number(props.occupancy) >= Number(props.capacity_persons)) {
      // a full shelter takes nobody more: outlined in red (the legend's "已满" row)
      return { color: "#d7191c", weight: 2.5, opacity: 1, dashArray: "5 3", fill: true, fillColor: color, fillOpacity: st.opacity !== undefined ? Number(st.opacity) : 0.7 };
    }
    return {
      color: outline, weight: classified ? 0.4 : 1, opacity: classified ? 0.6 : 0.9, fill: true,
      fillColor: color, fillOpacity: st.opacity !== undefined ? Number(st.opacity) : (classified ? 0.55 : (st.fill ? 0.08 : 0.3))
    };
  };
  function withOpacity(style, factor) {
    if (factor === undefined || factor >= 1) return style;
    var out = Object.assign({}, style);
    out.opacity = (style.opacity === undefined ? 1 : style.opacity) * factor;
    if (style.fill !== false) out.fillOpacity = (style.fillOpacity === undefined ? 0.2 : style.fillOpacity) * factor;
    return out;
  }

  /* ---------- the vector tiles: one request per tile for every visible layer ----------
     512-pixel tiles drawn from the server's tile one zoom level up (the same area at twice the pixels):
     a quarter of the requests of 256-pixel tiles. Tiles are fetched once the map stops moving and only
     if still wanted, kept in memory for five minutes (panning back costs nothing), revalidated through
     the browser's HTTP cache (ETag) after that, and retried on 429/503 instead of being left blank. */
  // defined once Leaflet is loaded (the page loads its own scripts before the vendored ones)
  function defineVectorTiles() { return L.VectorGrid.extend({
    options: { tileSize: 512, rendererFactory: L.svg.tile, interactive: false, minZoom: 1, maxZoom: 22, maxNativeZoom: 20,
      updateWhenIdle: true, updateWhenZooming: false, keepBuffer: 1, pane: "gg-vector" },
    initialize: function (options) {
      L.VectorGrid.prototype.initialize.call(this, options);
      this._cache = new Map();
      this._inflight = {};
      this.waiting = {};  // tile key → retry text, while the server asks the map to wait
    },
    layerIdsAt: function (z) {
      return G.state.registryOrder.filter(function (id) {
        var e = G.state.layers[id];
        return e && e.on && !e.def.raster && !e.suppressed && z >= e.def.min_zoom;
      });
    },
    tileUrl: function (coords) {
      var ids = this.layerIdsAt(coords.z);
      if (!ids.length) return null;
      var keyed = ids.some(function (id) { return G.state.layers[id].def.access !== "public"; });
      return { url: "/tiles/" + (coords.z - 1) + "/" + coords.x + "/" + coords.y + ".mvt?layers=" + ids.join(","), keyed: keyed };
    },
    _load: function (coords, key) {
      var self = this, where = this.tileUrl(coords);
      if (!where) return Promise.resolve({});
      var hit = this._cache.get(where.url);
      if (hit && Date.now() - hit.at < TILE_TTL_MS) {
        this._cache.delete(where.url); this._cache.set(where.url, hit);  // most recently used last
        G.metrics.tileCacheHits++;
        return Promise.resolve(hit.layers);
      }
      if (this._inflight[where.url]) return this._inflight[where.url];
      var promise = new Promise(function (resolve) { setTimeout(resolve, TILE_DEBOUNCE_MS); }).then(function () {
        var tile = self._tiles[key];
        if (!self._map || !tile || !tile.current) throw Object.assign(new Error("tile no longer wanted"), { name: "AbortError" });
        G.metrics.tileRequests++;
        return G.api(where.url, { binary: true, anonymous: !where.keyed, where: false, quiet: true, retries: 10,
          onRetry: function (text) { self.waiting[key] = text; G.emit("tiles:waiting", self.waiting); } });
      }).then(function (buffer) {
        var layers = buffer && buffer.byteLength ? G.decodeMvt(buffer) : {};
        self._cache.set(where.url, { at: Date.now(), layers: layers });
        while (self._cache.size > TILE_CACHE_SIZE) self._cache.delete(self._cache.keys().next().value);
        return layers;
      });
      var settle = function () { delete self._inflight[where.url]; delete self.waiting[key]; G.emit("tiles:waiting", self.waiting); };
      promise.then(settle, settle);
      this._inflight[where.url] = promise;
      return promise;
    },
    createTile: function (coords, done) {
      var self = this, size = this.getTileSize(), key = this._tileCoordsToKey(coords);
      var renderer = this.options.rendererFactory(coords, size, this.options);
      var el = renderer.getContainer();
      el.setAttribute("data-tile", key);
      this._load(coords, key).then(function (layers) {
        var counts = self._draw(renderer, layers, coords);
        el._gg = { counts: counts, layers: layers, features: Object.keys(layers).reduce(function (n, k) { return n + layers[k].features.length; }, 0) };
        el.setAttribute("data-features", String(el._gg.features));
        if (self._map) renderer.addTo(self._map);
        G.metrics.tileLoads++;
        L.Util.requestAnimFrame(function () { done(null, el); });
      }, function (err) {
        if (err && err.name === "AbortError") { done(null, el); return; }
        el.setAttribute("data-failed", err && err.slug || "error");
        G.metrics.tileFailures++;
        G.emit("tiles:failed", { key: key, error: err });
        done(err, el);
      });
      return el;
    },
    _draw: function (renderer, layers, coords) {
      var self = this, counts = {};
      G.state.order.forEach(function (id) {
        var e = G.state.layers[id], data = layers[id];
        if (!data || !e || !e.on || e.suppressed || coords.z < e.def.min_zoom) return;
        var pxPerExtent = self.getTileSize().divideBy(data.extent);
        var n = 0;
        data.features.forEach(function (feat) {
          var style = withOpacity(G.styleFor(e.def, feat.properties, coords.z), e.opacity);
          if (!style) return;
          var sym = self._createLayer(feat, pxPerExtent);
          sym.render(renderer, L.extend({}, L.Path.prototype.options, style));
          renderer._addPath(sym);
          var path = sym._path;
          path.setAttribute("data-layer", id);
          if (feat.id !== undefined) path.setAttribute("data-fid", String(feat.id));
          if (feat.properties.kind) path.setAttribute("data-kind", String(feat.properties.kind));
          if (style.icon && e.opacity !== undefined && e.opacity < 1) path.setAttribute("opacity", String(e.opacity));
          n++;
        });
        counts[id] = n;
      });
      return counts;
    },
    /* redraw from memory (opacity, order, language changed): no request unless the layer set changed */
    refresh: function () { if (this._map) this.redraw(); },
    clearCache: function () { this._cache.clear(); }
  }); }

  function scheduleTiles() {
    clearTimeout(scheduleTiles.timer);
    scheduleTiles.pending = true;
    scheduleTiles.timer = setTimeout(function () { scheduleTiles.pending = false; if (G.tiles) G.tiles.refresh(); }, 30);
  }
  G.refreshTiles = scheduleTiles;
  /* every tile of the view drawn (or failed), nothing waiting: what tests and the print layout wait for */
  G.tilesSettled = function () {
    var t = G.tiles;
    if (!t || !t._map || scheduleTiles.pending || Object.keys(t._inflight).length) return false;
    var tiles = Object.values(t._tiles);
    return tiles.length > 0 && tiles.every(function (x) { return !x.current || x.loaded; });
  };

  G.setLayerVisible = function (id, on) {
    var entry = G.state.layers[id];
    if (!entry) return;
    entry.on = on;
    if (entry.def.raster) {
      if (on && !entry.leaflet) entry.leaflet = L.tileLayer(entry.def.tiles, { maxZoom: 22, maxNativeZoom: 20, keepBuffer: 2, pane: "gg-raster" });
      if (entry.leaflet && on && !G.map.hasLayer(entry.leaflet)) G.map.addLayer(entry.leaflet);
      if (entry.leaflet && !on && G.map.hasLayer(entry.leaflet)) G.map.removeLayer(entry.leaflet);
      if (entry.leaflet && entry.leaflet.setOpacity) entry.leaflet.setOpacity(entry.opacity === undefined ? 1 : entry.opacity);
    } else {
      scheduleTiles();
    }
    renderLayerList();
    G.writeHash();
    G.emit("layers:changed", { id: id, on: on });
  };
  G.setLayerOpacity = function (id, value) {
    var entry = G.state.layers[id];
    if (!entry) return;
    entry.opacity = Math.max(0, Math.min(1, Number(value)));
    if (entry.def.raster) { if (entry.leaflet) entry.leaflet.setOpacity(entry.opacity); }
    else scheduleTiles();
  };
  /* move a layer one step up (drawn later, on top) or down in the drawing order */
  G.moveLayer = function (id, step) {
    // past the next layer that is switched on: a step always changes what the map shows
    var order = G.state.order, i = order.indexOf(id), raster = Boolean(G.state.layers[id].def.raster), j = i + step;
    while (j >= 0 && j < order.length && !G.state.layers[order[j]].on) j += step;
    if (i < 0 || j < 0 || j >= order.length || Boolean(G.state.layers[order[j]].def.raster) !== raster) return;
    order.splice(i, 1);
    order.splice(j, 0, id);
    scheduleTiles();
    renderLayerList();
  };
  G.visibleLayers = function () {
    return G.state.order.filter(function (id) { return G.state.layers[id].on; }).map(function (id) { return G.state.layers[id].def; });
  };
  /* default drawing order, bottom first: rasters, the vector basemap, then areas, lines, points */
  function drawRank(def) {
    if (def.raster) return 0;
    if (def.basemap) return 1 + ({ fill: 0, line: 1, point: 2 }[kindOf(def)] || 0);
    return 4 + ({ fill: 0, line: 1, point: 2 }[kindOf(def)] || 0);
  }
  G.loadLayers = function () {
    return G.api("/map/layers.json", { where: "#gg-key-box", context: G.t("layers") }).then(function (body) {
      var wasOn = G.state.order.length ? G.state.order.filter(function (id) { return G.state.layers[id].on; }) : null;
      G.state.order.forEach(function (id) {
        var e = G.state.layers[id];
        if (e.leaflet && G.map.hasLayer(e.leaflet)) G.map.removeLayer(e.leaflet);
      });
      G.state.layers = {}; G.state.order = []; G.state.registryOrder = [];
      G.state.caller = body.caller; G.state.allowedTools = body.tools || null;
      G.state.networks = body.networks || {}; G.state.utilities = body.utilities || {}; G.state.codes = body.codes || {};
      // local GeoTIFF basemaps (orthophoto, hillshade) are listed first, under the vector basemap
      var defs = (body.basemaps || []).map(function (b) {
        return { id: "raster:" + b.id, title: b.title, basemap: true, raster: true, tiles: b.tiles, min_zoom: 0, access: "public",
          geometry_type: "Raster", legend: [], style: { color: b.kind === "image" ? "#6b8e23" : "#999999" } };
      }).concat(body.layers);
      defs.forEach(function (def, i) { def.rank = drawRank(def) * 1000 + i; });
      defs.forEach(function (def) { G.state.layers[def.id] = { def: def, on: false, leaflet: null, opacity: 1 }; G.state.registryOrder.push(def.id); });
      G.state.order = defs.slice().sort(function (a, b) { return a.rank - b.rank; }).map(function (d) { return d.id; });
      var wanted = wasOn || G.state.hashLayers ||
        body.layers.filter(function (d) { return d.visible; }).map(function (d) { return d.id; });
      G.state.hashLayers = null;
      wanted.forEach(function (id) { if (G.state.layers[id]) { G.state.layers[id].on = true; if (G.state.layers[id].def.raster) G.setLayerVisible(id, true); } });
      if (G.tiles) G.tiles.clearCache();
      scheduleTiles();
      renderLayerList();
      renderKeyState();
      renderTools();
      document.body.removeAttribute("data-key-rejected");
      G.emit("layers:loaded", body);
      return body;
    }).catch(function (err) {
      if (err.status === 401 && G.apiKey()) {
        // an unknown or revoked key: forget it and carry on anonymously (public layers)
        sessionStorage.removeItem(G.KEY_STORAGE);
        return G.loadLayers().then(function (body) {
          document.getElementById("gg-key-state").textContent = G.t("keyRejected");
          G.showProblem("#gg-key-box", err, G.t("keyLabel"));
          document.getElementById("gg-key-box").classList.remove("gg-hidden");
          document.body.setAttribute("data-key-rejected", "1");
          return body;
        });
      }
    });
  };

  function legendRows(def) {
    var kind = kindOf(def);
    if (def.emergency) {
      // shapes by kind (drawn neutral), then the status colours
      var spec = def.emergency;
      return spec.symbols.map(function (s) {
        return G.el("li", { "data-symbol": s.kind }, [G.el("img", { class: "gg-symbol", alt: "", src: G.symbolUrl(s.shape, "#5a6b7d") }), G.title(s)]);
      }).concat(spec.status_colors.map(function (s) {
        return G.el("li", { "data-status": s.status }, [G.el("span", { class: "gg-swatch gg-point", style: "background:" + s.color }), G.title(s)]);
      }));
    }
    if (def.symbols && def.symbols.length) {
      return def.symbols.map(function (s) {
        return G.el("li", { "data-symbol": s.kind }, [G.el("img", { class: "gg-symbol", alt: "", src: G.symbolUrl(s.shape, "#5a6b7d") }), G.title(s)]);
      });
    }
    var present = {};
    Object.keys(G.state.networks || {}).forEach(function (k) { present[G.state.networks[k].utility] = true; });
    return (def.legend || []).filter(function (item) {
      // a utility legend lists the utilities the city's networks have, not every one there is
      return !(def.style && def.style.by === "utility") || !Object.keys(present).length || present[item.code];
    }).map(function (item) {
      return G.el("li", { "data-code": item.code }, [G.el("span", { class: "gg-swatch gg-" + kind, style: "background:" + item.color }),
        (/^[0-9A-Z]{2,6}$/.test(item.code) ? item.code + " " : "") + (G.lang === "en" ? item.en : item.zh)]);
    });
  }
  G.legendRows = legendRows;
  function renderLayerList() {
    var box = document.getElementById("gg-layers");
    if (!box || !G.map) return;
    box.innerHTML = "";
    var zoom = G.map.getZoom();
    [[true, "basemap"], [false, "overlays"]].forEach(function (group) {
      // listed top first: the layer drawn on top is the first row
      var ids = G.state.order.filter(function (id) { return Boolean(G.state.layers[id].def.basemap) === group[0]; }).reverse();
      if (!ids.length) return;
      box.appendChild(G.el("h4", { text: G.t(group[1]) }));
      ids.forEach(function (id) {
        var e = G.state.layers[id], def = e.def;
        var check = G.el("input", { type: "checkbox", "data-layer": id });
        check.checked = e.on;
        check.addEventListener("change", function () { G.setLayerVisible(id, check.checked); });
        var hint = zoom < def.min_zoom ? G.el("small", { text: " " + G.t("minZoomHint", { z: def.min_zoom }) }) : null;
        var row = G.el("div", { class: "gg-layer-row", "data-layer-row": id }, [
          G.el("label", { class: "gg-layer" }, [check, G.el("span", { class: "gg-swatch gg-" + kindOf(def), style: "background:" + swatchColor(def) }),
            G.el("span", { class: "gg-layer-title", text: G.title(def.title) }), hint])]);
        if (e.on) {
          var slider = G.el("input", { type: "range", min: "0", max: "100", step: "5", class: "gg-opacity", "data-opacity": id,
            title: G.t("opacity"), "aria-label": G.t("opacity") + " " + G.title(def.title) });
          slider.value = String(Math.round((e.opacity === undefined ? 1 : e.opacity) * 100));
          slider.addEventListener("change", function () { G.setLayerOpacity(id, Number(slider.value) / 100); });
          var up = G.el("button", { class: "gg-btn gg-mini", "data-move": "up", title: G.t("moveUp"), text: "↑" });
          var down = G.el("button", { class: "gg-btn gg-mini", "data-move": "down", title: G.t("moveDown"), text: "↓" });
          up.addEventListener("click", function () { G.moveLayer(id, +1); });
          down.addEventListener("click", function () { G.moveLayer(id, -1); });
          row.appendChild(G.el("div", { class: "gg-layer-tools" }, [G.el("span", { class: "gg-hint", text: G.t("opacity") }), slider, up, down]));
          var rows = legendRows(def);
          if (rows.length) row.appendChild(G.el("ul", { class: "gg-legend", "data-legend": id }, rows));
        }
        if (e.problem) row.appendChild(G.el("div", { class: "gg-problem", role: "alert", text: e.problem }));
        box.appendChild(row);
      });
    });
  }
  G.renderLayerList = renderLayerList;
  G.swatchColor = function (def) { return swatchColor(def); };
  function swatchColor(def) {
    if (def.legend && def.legend.length) return def.legend[0].color;
    return (def.style && def.style.color) || (def.basemap ? "#8d8578" : "#3366cc");
  }

  /* a notice over the map while tiles wait for the server (429/503) or failed for good */
  function renderTileNotice(waiting) {
    var node = document.getElementById("gg-map-notice");
    if (!node) return;
    var texts = Object.keys(waiting || {}).map(function (k) { return waiting[k]; });
    if (texts.length) {
      node.textContent = G.t("tilesWaiting", { n: texts.length }) + " " + texts[texts.length - 1];
      node.className = "gg-map-notice";
      node.setAttribute("data-state", "waiting");
    } else if (G.metrics.tileFailures && G.tiles && Object.values(G.tiles._tiles).some(function (t) { return t.el.getAttribute("data-failed"); })) {
      node.textContent = G.t("tilesFailed");
      node.className = "gg-map-notice gg-error";
      node.setAttribute("data-state", "failed");
      var retry = G.el("button", { class: "gg-btn gg-mini", text: G.t("retry") });
      retry.addEventListener("click", function () { G.tiles.redraw(); });
      node.appendChild(retry);
    } else {
      node.className = "gg-map-notice gg-hidden";
      node.removeAttribute("data-state");
    }
  }

  /* ---------- results panel and highlights ---------- */
  G.showResults = function (title, node) {
    document.getElementById("gg-results-title").textContent = title;
    var box = document.getElementById("gg-results");
    box.innerHTML = "";
    if (node) box.appendChild(node);
    document.getElementById("gg-results-box").classList.remove("gg-empty-box");
    document.getElementById("gg-panel").classList.add("gg-open");
  };
  G.table = function (columns, rows, attrs) {
    var head = G.el("tr", {}, columns.map(function (c) { return G.el("th", { text: c }); }));
    var table = G.el("table", Object.assign({ class: "gg-table" }, attrs || {}), [G.el("thead", {}, [head])]);
    var body = G.el("tbody");
    rows.forEach(function (r) {
      var tr = G.el("tr", {}, r.cells.map(function (c) { return G.el("td", {}, [c instanceof Node ? c : String(c === null || c === undefined ? "" : c)]); }));
      if (r.onclick) { tr.classList.add("gg-clickable"); tr.addEventListener("click", r.onclick); }
      if (r.attrs) Object.keys(r.attrs).forEach(function (k) { tr.setAttribute(k, r.attrs[k]); });
      body.appendChild(tr);
    });
    table.appendChild(body);
    return table;
  };
  /* outline only: a huge polygon (the urban boundary covers the city) must not flood the map */
  G.highlight = function (geojson, style) {
    G.highlightLayer.clearLayers();
    if (!geojson) return null;
    var layer = L.geoJSON(geojson, {
      pane: "gg-highlight",
      style: function () { return Object.assign({ color: "#00e5ff", weight: 4, opacity: 0.95, fill: false, className: "gg-highlight" }, style || {}); },
      pointToLayer: function (f, latlng) {
        return L.circleMarker(latlng, Object.assign({ radius: 11, color: "#00e5ff", weight: 3, fill: false, className: "gg-highlight" }, style || {}));
      }
    });
    G.highlightLayer.addLayer(layer);
    return layer;
  };
  /* a printable document (a report, a repair order) shown over the map in a sandboxed frame */
  G.showDocument = function (title, html, id) {
    var old = document.getElementById("gg-report");
    if (old) old.remove();
    var close = G.el("button", { class: "gg-btn", text: G.t("close") });
    var print = G.el("button", { class: "gg-btn", id: "gg-print", text: G.t("print") });
    var frame = G.el("iframe", { id: id || "gg-report-frame", sandbox: "allow-modals allow-same-origin" });
    frame.srcdoc = html;
    var box = G.el("div", { id: "gg-report", class: "gg-modal" }, [G.el("div", { class: "gg-modal-bar" },
      [G.el("span", { text: title }), G.el("span", {}, [print, " ", close])]), frame]);
    close.addEventListener("click", function () { box.remove(); });
    print.addEventListener("click", function () { frame.contentWindow.print(); });
    document.body.appendChild(box);
    return frame;
  };
  G.zoomToGeoJSON = function (geojson) {
    var b = L.geoJSON(geojson).getBounds();
    if (b.isValid()) G.map.fitBounds(b, { maxZoom: 18, padding: [40, 40] });
  };

  /* ---------- tools panel ---------- */
  G.activateTool = function (id) {
    var current = G.state.activeTool && G.tool(G.state.activeTool);
    if (current && current.deactivate) current.deactivate();
    G.state.activeTool = id;
    var tool = id && G.tool(id);
    if (tool && tool.activate) tool.activate();
    renderTools();
  };
  function usable(t) { return t.available !== false && G.allowed(t.gate === undefined ? t.id : t.gate); }
  G.usable = usable;
  function renderTools() {
    var box = document.getElementById("gg-tools");
    if (!box) return;
    box.innerHTML = "";
    if (G.state.activeTool && !usable(G.tool(G.state.activeTool))) {
      var gone = G.tool(G.state.activeTool);
      if (gone && gone.deactivate) gone.deactivate();
      G.state.activeTool = G.defaultTool;
    }
    var modules = [];
    G.tools.forEach(function (t) { if (t.button !== false && usable(t) && modules.indexOf(t.module) < 0) modules.push(t.module); });
    modules.forEach(function (module) {
      box.appendChild(G.el("h4", { text: G.t("module_" + module) }));
      var row = G.el("div", { class: "gg-tool-row" });
      G.tools.filter(function (t) { return t.module === module && t.button !== false && usable(t); }).forEach(function (t) {
        var btn = G.el("button", { class: "gg-btn gg-tool" + (G.state.activeTool === t.id ? " gg-active" : ""), "data-tool": t.id,
          text: G.title(t.title) });
        btn.addEventListener("click", function () { G.activateTool(G.state.activeTool === t.id ? G.defaultTool : t.id); });
        row.appendChild(btn);
      });
      box.appendChild(row);
    });
  }
  G.renderTools = renderTools;

  /* ---------- language and key ---------- */
  G.setLang = function (lang) {
    G.lang = lang === "en" ? "en" : "zh";
    document.documentElement.lang = G.lang === "en" ? "en" : "zh-CN";
    document.querySelectorAll("[data-i18n]").forEach(function (n) { n.textContent = G.t(n.getAttribute("data-i18n")); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach(function (n) { n.placeholder = G.t(n.getAttribute("data-i18n-placeholder")); });
    document.querySelectorAll("[data-i18n-title]").forEach(function (n) { n.title = G.t(n.getAttribute("data-i18n-title")); });
    document.getElementById("gg-lang").textContent = G.lang === "en" ? "中文" : "EN";
    document.title = "govgis " + G.t("title") + " — " + G.config.cityName;
    renderLayerList(); renderTools(); renderKeyState();
    G.tools.forEach(function (t) { if (t.onLanguage) t.onLanguage(G.lang); });
    G.writeHash();
  };
  function renderKeyState() {
    var node = document.getElementById("gg-key-state");
    var caller = G.state.caller;
    node.textContent = caller && !caller.anonymous ? G.t("keyOn") + " · " + (caller.department || caller.name) : G.t("keyOff");
  }
  function wireChrome() {
    document.getElementById("gg-lang").addEventListener("click", function () { G.setLang(G.lang === "en" ? "zh" : "en"); });
    document.getElementById("gg-key-btn").addEventListener("click", function () {
      document.getElementById("gg-key-box").classList.toggle("gg-hidden");
    });
    document.getElementById("gg-key-save").addEventListener("click", function () {
      var v = document.getElementById("gg-key-input").value.trim();
      if (v) sessionStorage.setItem(G.KEY_STORAGE, v); else sessionStorage.removeItem(G.KEY_STORAGE);
      document.getElementById("gg-key-input").value = "";
      G.loadLayers();
    });
    document.getElementById("gg-key-clear").addEventListener("click", function () {
      sessionStorage.removeItem(G.KEY_STORAGE);
      G.state.order = []; G.state.layers = {};
      G.loadLayers();
    });
    document.getElementById("gg-panel-toggle").addEventListener("click", function () {
      document.getElementById("gg-panel").classList.toggle("gg-open");
      document.body.classList.toggle("gg-panel-hidden");
      setTimeout(function () { G.map.invalidateSize(); }, 200);
    });
  }

  /* ---------- start ---------- */
  G.start = function (map, config) {
    G.map = map; G.config = config;
    var hash = readHash();
    G.lang = hash.lang || config.language || "zh";
    proj4.defs(config.storageCrs, config.storageProj4);
    Object.keys(PANES).forEach(function (name) { map.createPane("gg-" + name).style.zIndex = PANES[name]; });
    G.highlightLayer = L.featureGroup().addTo(map);
    G.scaleControl = L.control.scale({ metric: true, imperial: false, maxWidth: 160, position: "bottomleft" }).addTo(map);
    if (config.externalBasemapUrl) L.tileLayer(config.externalBasemapUrl, { maxZoom: 20 }).addTo(map);
    map.setMaxBounds(L.latLngBounds([config.bounds[1] - 0.3, config.bounds[0] - 0.3], [config.bounds[3] + 0.3, config.bounds[2] + 0.3]));
    if (hash.map) {
      var parts = hash.map.split("/").map(Number);
      if (parts.length === 3 && parts.every(isFinite)) map.setView([parts[1], parts[2]], parts[0], { animate: false });
    }
    if (hash.layers !== undefined) G.state.hashLayers = hash.layers ? hash.layers.split(",") : [];
    map.on("mousemove", function (e) { showCoords(e.latlng); });
    map.on("click", function (e) {
      showCoords(e.latlng);
      var tool = G.state.activeTool && G.tool(G.state.activeTool);
      if (G.drawing) return;
      if (tool && tool.onMapClick) tool.onMapClick(e);
    });
    map.on("moveend", function () { G.writeHash(); renderLayerList(); });
    G.state.registryOrder = [];
    G.VectorTiles = G.VectorTiles || defineVectorTiles();
    G.tiles = new G.VectorTiles({});
    G.tiles.on("load", function () {
      if (G.metrics.firstTilesDrawn === null && Object.keys(G.tiles._tiles).length) G.metrics.firstTilesDrawn = performance.now();
    });
    G.on("tiles:waiting", renderTileNotice);
    G.on("tiles:failed", function () { renderTileNotice(G.tiles.waiting); });
    G.tiles.on("load", function () { renderTileNotice(G.tiles.waiting); });
    showCoords(map.getCenter());
    wireChrome();
    G.tools.forEach(function (t) {
      t.available = true;  // the page includes a tool's script only when the server has its endpoints
      if (t.init) t.init(G);
    });
    G.defaultTool = G.tool("identify") ? "identify" : null;
    G.setLang(G.lang);
    G.activateTool(G.defaultTool);
    G.ready = G.loadLayers().then(function () {
      G.tiles.addTo(map);
      if (!hash.map) return fitToData();
    }).then(function () { G.writeHash(); document.body.setAttribute("data-ready", "1"); });
  };
  // Without a view in the URL, open on the city's data (the basemap layer's extent), else the city bounds.
  function fitToData() {
    var b = G.config.bounds;
    var basemap = G.state.order.filter(function (id) { return G.state.layers[id].def.basemap && !G.state.layers[id].def.raster; })[0];
    var fallback = function () { G.map.fitBounds([[b[1], b[0]], [b[3], b[2]]]); };
    if (!basemap) { fallback(); return Promise.resolve(); }
    return G.api("/collections/" + basemap, { silent: true }).then(function (c) {
      var bbox = c && c.extent && c.extent.spatial && c.extent.spatial.bbox && c.extent.spatial.bbox[0];
      if (bbox && bbox.length >= 4) G.map.fitBounds([[bbox[1], bbox[0]], [bbox[3], bbox[2]]]);
      else fallback();
    }).catch(fallback);
  }
})();
