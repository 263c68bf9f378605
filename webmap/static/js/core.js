/* govgis web map — the core: API access with the department key, layers (vector tiles and
   clustered points), legends, coordinates, URL hash, language, and the tool registry.
   Tools live in js/tools/*.js and call GovGis.registerTool({...}); the page includes only the tools
   whose API endpoints the server has, so a module adds its tools without touching the others. */
(function () {
  "use strict";
  var G = (window.GovGis = window.GovGis || {});
  var KEY_STORAGE = "govgis.apiKey";
  var PANES = { fill: 350, line: 360, point: 370, highlight: 450 };
  var PALETTE = ["#1f78b4", "#33a02c", "#e31a1c", "#ff7f00", "#6a3d9a", "#b15928", "#a6cee3", "#b2df8a",
    "#fb9a99", "#fdbf6f", "#cab2d6", "#ffff99"];

  G.tools = G.tools || [];
  G.state = { layers: {}, order: [], activeTool: null, caller: null };
  G.metrics = { start: performance.now(), firstTilesDrawn: null, tileRequests: 0, tileLoads: 0 };

  /* ---------- events between tools (e.g. a repair-order tool extends the isolation panel) ---------- */
  var listeners = {};
  G.on = function (name, fn) { (listeners[name] = listeners[name] || []).push(fn); };
  G.emit = function (name, data) { (listeners[name] || []).forEach(function (fn) { fn(data); }); };

  /* ---------- tool registry ---------- */
  G.registerTool = function (tool) { G.tools.push(tool); };
  G.tool = function (id) { return G.tools.filter(function (t) { return t.id === id; })[0] || null; };

  /* ---------- small helpers ---------- */
  G.el = function (tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "html") node.innerHTML = attrs[k];
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  };
  G.title = function (obj) { return obj ? (obj[G.lang] || obj.zh || obj.en || "") : ""; };
  G.qs = function (params) {
    return Object.keys(params).filter(function (k) { return params[k] !== undefined && params[k] !== null && params[k] !== ""; })
      .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]); }).join("&");
  };
  G.fmt = function (n, digits) {
    return Number(n).toLocaleString(G.lang === "en" ? "en-US" : "zh-CN",
      { minimumFractionDigits: digits || 0, maximumFractionDigits: digits || 0 });
  };
  G.message = function (text, isError) {
    var node = document.getElementById("gg-message");
    node.textContent = text || "";
    node.className = isError ? "gg-error" : "";
  };

  /* ---------- API access: the department key travels in X-API-Key, kept for the browser session ---------- */
  G.apiKey = function () { return sessionStorage.getItem(KEY_STORAGE) || ""; };
  G.headers = function (extra) {
    var h = Object.assign({}, extra || {});
    var key = G.apiKey();
    if (key) h["X-API-Key"] = key;
    return h;
  };
  G.api = function (path, options) {
    options = options || {};
    var init = Object.assign({}, options, { headers: G.headers(options.headers) });
    if (options.json !== undefined) {
      init.method = init.method || "POST";
      init.body = JSON.stringify(options.json);
      init.headers["Content-Type"] = "application/json";
      delete init.json;
    }
    return fetch(path, init).then(function (response) {
      var type = response.headers.get("content-type") || "";
      var body = type.indexOf("json") >= 0 ? response.json() : response.text();
      return body.then(function (b) {
        if (!response.ok) {
          var err = new Error((b && b.detail) || response.statusText || String(response.status));
          err.status = response.status; err.body = b;
          throw err;
        }
        return b;
      });
    });
  };
  G.viewBbox = function () {
    var b = G.map.getBounds();
    return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(6); }).join(",");
  };

  /* ---------- coordinates: CGCS2000 projected (storage CRS) and geographic ---------- */
  G.toProjected = function (latlng) {
    return proj4("EPSG:4326", G.config.storageCrs, [latlng.lng, latlng.lat]);  // [easting, northing]
  };
  function showCoords(latlng) {
    var p = G.toProjected(latlng);
    document.getElementById("gg-coords").textContent =
      G.t("projected") + " (" + G.config.storageCrs + ") E " + p[0].toFixed(2) + "  N " + p[1].toFixed(2) +
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
    return "fill";
  }
  G.styleFor = function (def, props, zoom) {
    var color = G.featureColor(def, props);
    var st = def.style || {};
    var kind = kindOf(def);
    if (kind === "line") {
      var w = def.id === "emergency_roads" ? ({ arterial: 3.5, secondary: 2.2 }[props.road_class] || 1.2) : 2;
      return { color: def.basemap ? "#8d8578" : color, weight: w, opacity: 0.9, fill: false };
    }
    if (kind === "point") {
      return { radius: zoom >= 16 ? 5 : 4, color: "#ffffff", weight: 1, fill: true, fillColor: color, fillOpacity: 0.95 };
    }
    var classified = Boolean(st.legend);
    var outline = st.fill && !classified ? (st.color || color) : color;
    return {
      color: outline, weight: classified ? 0.4 : 1, opacity: classified ? 0.6 : 0.9, fill: true,
      fillColor: color, fillOpacity: st.opacity !== undefined ? Number(st.opacity) : (classified ? 0.55 : (st.fill ? 0.08 : 0.3))
    };
  };

  /* ---------- layers ---------- */
  function paneOf(def) { return "gg-" + kindOf(def); }
  function makeTileLayer(def) {
    var styles = {};
    styles[def.id] = function (props, zoom) { return G.styleFor(def, props, zoom); };
    var layer = L.vectorGrid.protobuf(def.tiles, {
      vectorTileLayerStyles: styles, rendererFactory: L.svg.tile, interactive: false,
      pane: paneOf(def), minZoom: def.min_zoom, maxZoom: 22, maxNativeZoom: 20, keepBuffer: 4,
      fetchOptions: { headers: G.headers() }
    });
    layer.on("tileloadstart", function () { G.metrics.tileRequests++; });
    layer.on("tileload", function () { G.metrics.tileLoads++; });
    layer.on("load", function () {
      if (G.metrics.firstTilesDrawn === null && G.map.getZoom() >= def.min_zoom) {
        G.metrics.firstTilesDrawn = performance.now();  // ms since navigation started
      }
    });
    return layer;
  }
  function makePointLayer(def) {
    var group = L.markerClusterGroup({ chunkedLoading: true, showCoverageOnHover: false, disableClusteringAtZoom: 19,
      clusterPane: "gg-point" });
    var seq = 0;
    group.refresh = function () {
      var mine = ++seq;
      if (G.map.getZoom() < def.min_zoom) { group.clearLayers(); group.featureCount = 0; return Promise.resolve(); }
      return G.api(def.items + "?" + G.qs({ bbox: G.viewBbox(), limit: 5000 })).then(function (fc) {
        if (mine !== seq) return;
        group.clearLayers();
        var markers = fc.features.filter(function (f) { return f.geometry; }).map(function (f) {
          var xy = f.geometry.type === "MultiPoint" ? f.geometry.coordinates[0] : f.geometry.coordinates;
          var m = L.circleMarker([xy[1], xy[0]], Object.assign(G.styleFor(def, f.properties || {}, G.map.getZoom()),
            { pane: "gg-point" }));
          m.feature = f;
          return m;
        });
        group.addLayers(markers);
        group.featureCount = markers.length;
        group.fire("gg:loaded", { count: markers.length });
      }).catch(function (err) { G.message(G.title(def.title) + ": " + err.message, true); });
    };
    return group;
  }
  G.setLayerVisible = function (id, on) {
    var entry = G.state.layers[id];
    if (!entry) return;
    entry.on = on;
    if (on && !entry.leaflet) {
      entry.leaflet = entry.def.raster ? L.tileLayer(entry.def.tiles, { maxZoom: 22, maxNativeZoom: 20, keepBuffer: 4 })
        : entry.def.cluster ? makePointLayer(entry.def) : makeTileLayer(entry.def);
    }
    if (entry.leaflet) {
      if (on && !G.map.hasLayer(entry.leaflet)) {
        G.map.addLayer(entry.leaflet);
        if (entry.leaflet.refresh) entry.leaflet.refresh();
      }
      if (!on && G.map.hasLayer(entry.leaflet)) G.map.removeLayer(entry.leaflet);
    }
    renderLayerList();
    G.writeHash();
  };
  G.visibleLayers = function () {
    return G.state.order.filter(function (id) { return G.state.layers[id].on; }).map(function (id) { return G.state.layers[id].def; });
  };
  G.loadLayers = function () {
    return G.api("/map/layers.json").then(function (body) {
      var wasOn = G.state.order.length ? G.state.order.filter(function (id) { return G.state.layers[id].on; }) : null;
      G.state.order.forEach(function (id) {
        var e = G.state.layers[id];
        if (e.leaflet && G.map.hasLayer(e.leaflet)) G.map.removeLayer(e.leaflet);
      });
      G.state.layers = {}; G.state.order = []; G.state.caller = body.caller;
      // local GeoTIFF basemaps (orthophoto, hillshade) are listed first, under the vector basemap
      (body.basemaps || []).forEach(function (b) {
        var def = { id: "raster:" + b.id, title: b.title, basemap: true, raster: true, tiles: b.tiles, min_zoom: 0,
          geometry_type: "Raster", legend: [], style: { color: b.kind === "image" ? "#6b8e23" : "#999999" } };
        G.state.layers[def.id] = { def: def, on: false, leaflet: null }; G.state.order.push(def.id);
      });
      body.layers.forEach(function (def) { G.state.layers[def.id] = { def: def, on: false, leaflet: null }; G.state.order.push(def.id); });
      var wanted = wasOn || G.state.hashLayers ||
        body.layers.filter(function (d) { return d.visible; }).map(function (d) { return d.id; });
      G.state.hashLayers = null;
      wanted.forEach(function (id) { if (G.state.layers[id]) G.setLayerVisible(id, true); });
      renderLayerList();
      renderKeyState();
      document.body.removeAttribute("data-key-rejected");
      return body;
    }).catch(function (err) {
      G.message(G.t("keyRejected") + ": " + err.message, true);
      if (err.status === 401 && G.apiKey()) {
        // an unknown or revoked key: forget it and carry on anonymously (public layers)
        sessionStorage.removeItem(KEY_STORAGE);
        return G.loadLayers().then(function (body) {
          document.getElementById("gg-key-state").textContent = G.t("keyRejected");
          document.body.setAttribute("data-key-rejected", "1");
          return body;
        });
      }
    });
  };
  function renderLayerList() {
    var box = document.getElementById("gg-layers");
    if (!box || !G.map) return;
    box.innerHTML = "";
    [[true, "basemap"], [false, "overlays"]].forEach(function (group) {
      var ids = G.state.order.filter(function (id) { return Boolean(G.state.layers[id].def.basemap) === group[0]; });
      if (!ids.length) return;
      box.appendChild(G.el("h4", { text: G.t(group[1]) }));
      ids.forEach(function (id) {
        var e = G.state.layers[id], def = e.def;
        var box2 = G.el("input", { type: "checkbox", "data-layer": id });
        box2.checked = e.on;
        box2.addEventListener("change", function () { G.setLayerVisible(id, box2.checked); });
        var hint = G.map.getZoom() < def.min_zoom ? G.el("small", { text: " " + G.t("minZoomHint", { z: def.min_zoom }) }) : null;
        var row = G.el("label", { class: "gg-layer", "data-layer-row": id },
          [box2, G.el("span", { class: "gg-swatch gg-" + kindOf(def), style: "background:" + swatchColor(def) }), G.title(def.title), hint]);
        box.appendChild(row);
        if (e.on && def.legend && def.legend.length) {
          var legend = G.el("ul", { class: "gg-legend", "data-legend": id });
          def.legend.forEach(function (item) {
            legend.appendChild(G.el("li", {}, [G.el("span", { class: "gg-swatch gg-" + kindOf(def), style: "background:" + item.color }),
              (/^[0-9A-Z]{2,6}$/.test(item.code) ? item.code + " " : "") + (G.lang === "en" ? item.en : item.zh)]));
          });
          box.appendChild(legend);
        }
      });
    });
  }
  G.renderLayerList = renderLayerList;
  function swatchColor(def) {
    if (def.legend && def.legend.length) return def.legend[0].color;
    return (def.style && def.style.color) || (def.basemap ? "#8d8578" : "#3366cc");
  }

  /* ---------- results panel and highlights ---------- */
  G.showResults = function (title, node) {
    document.getElementById("gg-results-title").textContent = title;
    var box = document.getElementById("gg-results");
    box.innerHTML = "";
    if (node) box.appendChild(node);
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
  G.highlight = function (geojson, style) {
    G.highlightLayer.clearLayers();
    if (!geojson) return null;
    var layer = L.geoJSON(geojson, {
      pane: "gg-highlight",
      style: function () { return Object.assign({ color: "#00e5ff", weight: 4, fillOpacity: 0.15 }, style || {}); },
      pointToLayer: function (f, latlng) { return L.circleMarker(latlng, Object.assign({ radius: 8, color: "#00e5ff", weight: 3 }, style || {})); }
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
  function renderTools() {
    var box = document.getElementById("gg-tools");
    box.innerHTML = "";
    var modules = [];
    G.tools.forEach(function (t) { if (t.button !== false && modules.indexOf(t.module) < 0) modules.push(t.module); });
    modules.forEach(function (module) {
      box.appendChild(G.el("h4", { text: G.t("module_" + module) }));
      var row = G.el("div", { class: "gg-tool-row" });
      G.tools.filter(function (t) { return t.module === module && t.button !== false; }).forEach(function (t) {
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
      if (v) sessionStorage.setItem(KEY_STORAGE, v); else sessionStorage.removeItem(KEY_STORAGE);
      document.getElementById("gg-key-input").value = "";
      G.loadLayers();
    });
    document.getElementById("gg-key-clear").addEventListener("click", function () {
      sessionStorage.removeItem(KEY_STORAGE);
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
    L.control.scale({ metric: true, imperial: false, maxWidth: 160, position: "bottomleft" }).addTo(map);
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
    var refreshTimer = null;
    map.on("moveend", function () {
      G.writeHash();
      renderLayerList();
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(function () {
        G.state.order.forEach(function (id) {
          var e = G.state.layers[id];
          if (e.on && e.leaflet && e.leaflet.refresh) e.leaflet.refresh();
        });
      }, 150);
    });
    showCoords(map.getCenter());
    wireChrome();
    G.tools.forEach(function (t) {
      var declared = config.tools.some(function (c) { return c.id === t.id; });
      t.available = declared;
      if (t.init) t.init(G);
    });
    G.defaultTool = G.tool("identify") ? "identify" : null;
    G.setLang(G.lang);
    G.activateTool(G.defaultTool);
    G.ready = G.loadLayers().then(function () {
      if (!hash.map) return fitToData();
    }).then(function () { G.writeHash(); document.body.setAttribute("data-ready", "1"); });
  };
  // Without a view in the URL, open on the city's data (the basemap layer's extent), else the city bounds.
  function fitToData() {
    var b = G.config.bounds;
    var basemap = G.state.order.filter(function (id) { return G.state.layers[id].def.basemap; })[0];
    var fallback = function () { G.map.fitBounds([[b[1], b[0]], [b[3], b[2]]]); };
    if (!basemap) { fallback(); return Promise.resolve(); }
    return G.api("/collections/" + basemap).then(function (c) {
      var bbox = c && c.extent && c.extent.spatial && c.extent.spatial.bbox && c.extent.spatial.bbox[0];
      if (bbox && bbox.length >= 4) G.map.fitBounds([[bbox[1], bbox[0]], [bbox[3], bbox[2]]]);
      else fallback();
    }).catch(fallback);
  }
})();
