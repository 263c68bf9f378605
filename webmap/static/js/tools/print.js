/* Print the map: a page layout (title, the bureau's name, the map with a north arrow and a scale bar,
   the legend of the visible layers, the CRS and the local date) at A4 or A3, landscape or portrait,
   printed to paper or PDF by the browser itself (print CSS: nothing is rendered on the server).
   The layout is the page at its real size, so what the preview shows is what the paper gets. */
(function () {
  "use strict";
  var G = window.GovGis;
  G.addText({
    zh: { printMap: "打印地图", printTitle: "图名", paper: "纸张", orientation: "方向", landscape: "横向", portrait: "纵向",
      printNow: "打印 / 导出 PDF", closePreview: "关闭预览", legend: "图例", scale: "比例尺", scaleNote: "（图幅中心）", north: "北",
      crsLine: "坐标系：CGCS2000（{crs}），图面为 Web 墨卡托投影", madeOn: "制图日期：{d}", madeBy: "制图单位：{b}",
      printDefaultTitle: "{city}专题图", printHint: "地图范围即预览中的范围，可在预览里平移、缩放后再打印", printing: "正在准备打印…", moreClasses: "等 {n} 类" },
    en: { printMap: "Print map", printTitle: "Title", paper: "Paper", orientation: "Orientation", landscape: "Landscape", portrait: "Portrait",
      printNow: "Print / save as PDF", closePreview: "Close preview", legend: "Legend", scale: "Scale", scaleNote: " (at the centre)", north: "N",
      crsLine: "Coordinates: CGCS2000 ({crs}); map drawn in Web Mercator", madeOn: "Made on {d}", madeBy: "Made by {b}",
      printDefaultTitle: "{city} thematic map", printHint: "The printed extent is the preview's: pan and zoom it before printing", printing: "Preparing the print…", moreClasses: "+{n} more" }
  });
  var PAPERS = { A4: [210, 297], A3: [297, 420] };
  var MARGIN = 10, HEADER = 16, FOOTER = 14, LEGEND_SIDE = 62, LEGEND_BELOW = 48;
  var PX_PER_MM = 96 / 25.4;
  var saved = null, options = { title: "", paper: "A4", orientation: "landscape" };

  function pageSize(o) {
    var p = PAPERS[o.paper] || PAPERS.A4;
    return o.orientation === "portrait" ? { w: p[0], h: p[1] } : { w: p[1], h: p[0] };
  }
  /* a round length for a bar of about 30 mm at the map's scale, and the scale's denominator */
  function scaleInfo() {
    var mpp = G.metresPerPixel(G.map.getCenter().lat);      // metres per CSS pixel at the centre
    var denominator = mpp * PX_PER_MM * 1000;               // metres per metre of paper
    var target = 30 * PX_PER_MM * mpp;                      // metres in ~30 mm of paper
    var pow = Math.pow(10, Math.floor(Math.log10(target)));
    var nice = [1, 2, 5, 10].map(function (k) { return k * pow; }).filter(function (v) { return v <= target; }).pop() || pow;
    var round = Math.pow(10, Math.max(0, Math.floor(Math.log10(denominator)) - 1));
    return { metres: nice, px: nice / mpp, denominator: Math.round(denominator / round) * round };
  }
  function scaleBar() {
    var s = scaleInfo();
    var label = s.metres >= 1000 ? (s.metres / 1000) + " km" : s.metres + " m";
    var w = Math.round(s.px);
    var bar = G.el("div", { class: "gg-print-scale", id: "gg-print-scale", "data-denominator": String(s.denominator) });
    bar.innerHTML = '<svg width="' + (w + 40) + '" height="26" viewBox="0 0 ' + (w + 40) + ' 26" xmlns="http://www.w3.org/2000/svg">' +
      '<rect x="4" y="12" width="' + (w / 2) + '" height="6" fill="#222"/><rect x="' + (4 + w / 2) + '" y="12" width="' + (w / 2) + '" height="6" fill="#fff" stroke="#222"/>' +
      '<rect x="4" y="12" width="' + w + '" height="6" fill="none" stroke="#222"/>' +
      '<text x="4" y="9" font-size="10" font-family="sans-serif">0</text><text x="' + (4 + w) + '" y="9" font-size="10" text-anchor="middle" font-family="sans-serif">' + label + "</text></svg>";
    bar.appendChild(G.el("div", { class: "gg-print-scale-text", text: G.t("scale") + " 1:" + G.fmtNumber(s.denominator, 0) + G.t("scaleNote") }));
    return bar;
  }
  function northArrow() {
    var n = G.el("div", { class: "gg-print-north", id: "gg-print-north", title: G.t("north") });
    n.innerHTML = '<svg width="34" height="50" viewBox="0 0 34 50" xmlns="http://www.w3.org/2000/svg">' +
      '<path d="M17 2L29 40L17 32L5 40Z" fill="#fff" stroke="#222" stroke-width="1.5"/><path d="M17 2L17 32L5 40Z" fill="#222"/></svg>';
    n.appendChild(G.el("div", { class: "gg-print-north-text", text: G.lang === "en" ? "N" : "北 N" }));
    return n;
  }
  /* the values a classified layer shows in the current view (from the tiles drawn), so the legend
     lists the classes on the map, not the whole classification */
  function presentValues(def) {
    var field = def.style && (def.style.fill || def.style.by), seen = {};
    if (!field || !G.tiles) return null;
    Object.values(G.tiles._tiles).forEach(function (t) {
      var layers = t.el._gg && t.el._gg.layers, data = layers && layers[def.id];
      (data ? data.features : []).forEach(function (f) {
        var v = f.properties[field];
        if (v === undefined && def.lookup) v = def.lookup.values[String(f.properties[def.lookup.field])];
        if (v !== undefined && v !== null) { seen[String(v)] = true; if (String(v).length > 2) seen[String(v).slice(0, 2)] = true; }
      });
    });
    return seen;
  }
  function legend() {
    var box = G.el("div", { class: "gg-print-legend", id: "gg-print-legend" }, [G.el("h3", { text: G.t("legend") })]);
    G.state.order.slice().reverse().forEach(function (id) {
      var e = G.state.layers[id], def = e.def;
      if (!e.on || e.suppressed && !G.state.asOf || G.map.getZoom() < def.min_zoom) return;
      var item = G.el("div", { class: "gg-print-legend-layer", "data-legend-layer": id }, [
        G.el("div", { class: "gg-print-legend-title" }, [G.el("span", { class: "gg-swatch gg-" + G.kindOf(def), style: "background:" + G.swatchColor(def) }),
          G.el("strong", { text: G.title(def.title) })])]);
      var rows = G.legendRows(def);
      var present = def.symbols && def.symbols.length ? presentSymbols(def) : presentValues(def);
      if (present && !(def.symbols && def.symbols.length)) {
        rows = rows.filter(function (li) { var code = li.getAttribute("data-code"); return !code || present[code]; });
      } else if (present) {
        rows = rows.filter(function (li) { return present[li.getAttribute("data-symbol")]; });
      }
      if (rows.length) item.appendChild(G.el("ul", { class: "gg-legend" }, rows));
      box.appendChild(item);
    });
    return box;
  }
  function presentSymbols(def) {
    var seen = {};
    Object.values(G.tiles._tiles).forEach(function (t) {
      var data = t.el._gg && t.el._gg.layers && t.el._gg.layers[def.id];
      (data ? data.features : []).forEach(function (f) { seen[f.properties.kind] = true; });
    });
    return seen;
  }
  function footer() {
    return G.el("div", { class: "gg-print-footer" }, [
      G.el("div", { class: "gg-print-footer-left" }, [scaleBar()]),
      G.el("div", { class: "gg-print-footer-right" }, [
        G.el("div", { id: "gg-print-crs", text: G.t("crsLine", { crs: G.config.storageCrs }) }),
        G.el("div", { id: "gg-print-date", text: G.t("madeOn", { d: G.fmtDate(G.localToday()) }) + "　" + G.t("madeBy", { b: G.config.bureauName || "" }) })])]);
  }
  function whenTilesLoaded(timeoutMs) {
    return new Promise(function (resolve) {
      var t0 = Date.now();
      (function poll() {
        var settled = G.tilesSettled();
        if (settled || Date.now() - t0 > (timeoutMs || 20000)) resolve(settled);
        else setTimeout(poll, 100);
      })();
    });
  }
  G.whenTilesLoaded = whenTilesLoaded;

  /* lay the page out (and show it as a preview): resolves once the map's tiles in the frame are drawn */
  G.preparePrint = function (opts) {
    options = Object.assign(options, opts || {});
    if (!options.title) options.title = G.t("printDefaultTitle", { city: G.config.cityName });
    var size = pageSize(options), portrait = options.orientation === "portrait";
    var mapW = size.w - 2 * MARGIN - (portrait ? 0 : LEGEND_SIDE + 4);
    var mapH = size.h - 2 * MARGIN - HEADER - FOOTER - (portrait ? LEGEND_BELOW + 4 : 0);
    var container = G.map.getContainer();
    if (!saved) saved = { parent: container.parentNode, next: container.nextSibling, center: G.map.getCenter(), zoom: G.map.getZoom() };
    var old = document.getElementById("gg-print-root");
    if (old) old.remove();
    var style = document.getElementById("gg-page-style") || document.head.appendChild(G.el("style", { id: "gg-page-style" }));
    style.textContent = "@page { size: " + options.paper + " " + options.orientation + "; margin: 0; }";
    var frame = G.el("div", { class: "gg-print-map", id: "gg-print-map", style: "width:" + mapW + "mm;height:" + mapH + "mm" });
    var page = G.el("div", { class: "gg-print-page gg-" + options.orientation, id: "gg-print-page", "data-paper": options.paper, "data-orientation": options.orientation,
      style: "width:" + size.w + "mm;height:" + (size.h - 0.5) + "mm;padding:" + MARGIN + "mm" }, [
      G.el("div", { class: "gg-print-header", style: "height:" + HEADER + "mm" }, [
        G.el("h1", { id: "gg-print-title", text: options.title }),
        G.el("div", { class: "gg-print-bureau", id: "gg-print-bureau", text: G.config.bureauName || "" })]),
      G.el("div", { class: "gg-print-body" + (portrait ? " gg-print-body-portrait" : "") }, [frame])]);
    var root = G.el("div", { id: "gg-print-root" }, [toolbar(), page]);
    document.body.appendChild(root);
    document.body.classList.add("gg-print-mode");
    frame.appendChild(container);
    frame.appendChild(northArrow());
    G.map.invalidateSize({ animate: false });
    G.map.setView(saved.center, saved.zoom, { animate: false });
    return whenTilesLoaded().then(function () {
      var body = page.querySelector(".gg-print-body");
      var legendBox = legend();
      legendBox.style[portrait ? "height" : "width"] = (portrait ? LEGEND_BELOW : LEGEND_SIDE) + "mm";
      body.appendChild(legendBox);
      page.appendChild(footer());
      G.state.lastPrint = { paper: options.paper, orientation: options.orientation, title: options.title,
        mapMm: [mapW, mapH], scale: scaleInfo().denominator };
      document.body.setAttribute("data-print-ready", "1");
      return G.state.lastPrint;
    });
  };
  G.closePrint = function () {
    var root = document.getElementById("gg-print-root");
    if (saved) {
      var container = G.map.getContainer();
      if (saved.next && saved.next.parentNode === saved.parent) saved.parent.insertBefore(container, saved.next);
      else saved.parent.appendChild(container);
      var view = { c: G.map.getCenter(), z: G.map.getZoom() };
      saved = null;
      document.body.classList.remove("gg-print-mode");
      G.map.invalidateSize({ animate: false });
      G.map.setView(view.c, view.z, { animate: false });
    }
    if (root) root.remove();
    document.body.removeAttribute("data-print-ready");
  };
  function toolbar() {
    var title = G.el("input", { id: "gg-print-title-input", type: "text", value: options.title });
    var paper = G.el("select", { id: "gg-print-paper" }, ["A4", "A3"].map(function (p) { var o = G.el("option", { value: p, text: p }); o.selected = options.paper === p; return o; }));
    var orient = G.el("select", { id: "gg-print-orientation" }, ["landscape", "portrait"].map(function (p) { var o = G.el("option", { value: p, text: G.t(p) }); o.selected = options.orientation === p; return o; }));
    var apply = function () {
      var keep = { c: G.map.getCenter(), z: G.map.getZoom() };
      if (saved) { saved.center = keep.c; saved.zoom = keep.z; }
      G.preparePrint({ title: title.value, paper: paper.value, orientation: orient.value });
    };
    title.addEventListener("change", apply); paper.addEventListener("change", apply); orient.addEventListener("change", apply);
    var go = G.el("button", { class: "gg-btn gg-primary", id: "gg-print-go", text: G.t("printNow") });
    go.addEventListener("click", function () { apply(); whenTilesLoaded().then(function () { window.print(); }); });
    var close = G.el("button", { class: "gg-btn", id: "gg-print-close", text: G.t("closePreview") });
    close.addEventListener("click", function () { G.activateTool(G.defaultTool); });
    return G.el("div", { class: "gg-print-toolbar", id: "gg-print-toolbar" }, [
      G.el("label", { text: G.t("printTitle") }), title, G.el("label", { text: G.t("paper") }), paper,
      G.el("label", { text: G.t("orientation") }), orient, go, close, G.el("span", { class: "gg-hint", text: G.t("printHint") })]);
  }
  G.registerTool({
    id: "print", module: "common", title: { zh: "打印地图", en: "Print map" },
    activate: function () { G.preparePrint({}); },
    deactivate: function () { G.closePrint(); }
  });
})();
