/* Land: click a parcel → its timeline (versions and registrations) and lineage (splits/merges);
   an "as of" date (历史时点) that redraws the cadastre as the register stood at the end of that day,
   with a banner saying which date is shown; identify then answers for that date too. */
(function () {
  "use strict";
  var G = window.GovGis;
  G.addText({
    zh: { timeline: "宗地历史", asOf: "历史时点", asOfDate: "日期", asOfApply: "显示", asOfNow: "回到现状", timelineHint: "点击宗地查看历史与谱系",
      versions: "版本", validPeriod: "有效期", registrations: "登记", lineage: "谱系", ancestors: "来源宗地", descendants: "派生宗地", parcels: "宗地数",
      noParcel: "此处没有宗地", asOfBanner: "历史时点：{d}（地籍按当日登记状态显示，其他图层为现状）", asOfZoomIn: "放大到 {z} 级以显示该日的宗地",
      asOfCapped: "本视图宗地过多，只显示了前 {n} 宗，请放大", regKind: "登记类型", effective: "生效日期", recorded: "登簿时间", certificate: "证书号",
      kind_initial: "首次登记", kind_change: "变更登记", kind_transfer: "转移登记", kind_split: "分割", kind_merge: "合并",
      kind_boundary_adjustment: "界址调整", kind_cancellation: "注销登记", asOfHint: "选择日期后，地籍图显示该日结束时的登记状态" },
    en: { timeline: "Parcel history", asOf: "As of", asOfDate: "Date", asOfApply: "Show", asOfNow: "Back to today", timelineHint: "Click a parcel for its timeline and lineage",
      versions: "Versions", validPeriod: "Valid", registrations: "Registrations", lineage: "Lineage", ancestors: "Ancestors", descendants: "Descendants", parcels: "Parcels",
      noParcel: "No parcel here", asOfBanner: "As of {d} (the cadastre as registered that day; other layers are current)", asOfZoomIn: "Zoom in to level {z} to see that day's parcels",
      asOfCapped: "Too many parcels in this view: the first {n} are shown; zoom in", regKind: "Kind", effective: "Effective", recorded: "Recorded", certificate: "Certificate",
      kind_initial: "Initial", kind_change: "Change", kind_transfer: "Transfer", kind_split: "Split", kind_merge: "Merge",
      kind_boundary_adjustment: "Boundary adjustment", kind_cancellation: "Cancellation", asOfHint: "Pick a date: the cadastre shows the register at the end of that day" }
  });
  var VERSION_FIELDS = ["right_holder", "landuse_code", "plane_area", "status"];
  var ASOF_MIN_ZOOM = 16;     // a view at 16 holds a few hundred parcels; never the whole register
  var ASOF_PAGE = 500, ASOF_MAX = 2000;

  function parcelsDef() { var e = G.state.layers.cadastre_parcels; return e ? e.def : { fields: {} }; }
  function fieldTitle(name) {
    var f = parcelsDef().fields[name];
    return f ? G.title(f) : name;
  }
  function codeLink(code) {
    var a = G.el("a", { href: "#", "data-parcel-code": code, text: code });
    a.addEventListener("click", function (e) { e.preventDefault(); G.parcelHistory(code); });
    return a;
  }
  function period(v) { return (G.fmtLegalDate(v.valid_from) || "…") + " – " + (v.valid_to ? G.fmtLegalDate(v.valid_to) : "…"); }
  G.parcelHistory = function (code) {
    G.message(G.t("loading"));
    var enc = encodeURIComponent(code);
    var opts = { where: "#gg-results", context: G.t("timeline") };
    return Promise.all([G.api("/land/parcels/" + enc + "/timeline", opts), G.api("/land/parcels/" + enc + "/lineage", opts)]).then(function (r) {
      G.message("");
      var timeline = r[0], lineage = r[1], def = parcelsDef();
      G.state.lastTimeline = timeline; G.state.lastLineage = lineage;
      var fields = VERSION_FIELDS.filter(function (f) { return timeline.versions.some(function (v) { return f in v; }); });
      var box = G.el("div", { id: "gg-timeline", "data-parcel-code": code }, [
        G.el("h4", { text: code + " · " + G.t("versions") + " (" + timeline.versions.length + ")" }),
        G.table([G.t("validPeriod")].concat(fields.map(fieldTitle)), timeline.versions.map(function (v) {
          return { cells: [period(v)].concat(fields.map(function (f) { return G.fmtValue(def, f, v[f], v); })) };
        }), { id: "gg-versions-table" }),
        G.el("h4", { text: G.t("registrations") + " (" + timeline.registrations.length + ")" })]);
      box.appendChild(G.table([G.t("regKind"), G.t("effective"), G.t("recorded"), G.t("certificate")], timeline.registrations.map(function (reg) {
        var kind = G.t("kind_" + reg.kind);
        return { cells: [kind.indexOf("kind_") === 0 ? reg.kind : kind, G.fmtLegalDate(reg.effective_at), G.fmtDateTime(reg.recorded_at), reg.certificate_no || "—"] };
      }), { id: "gg-registrations-table" }));
      box.appendChild(G.el("h4", { text: G.t("lineage") }));
      box.appendChild(G.table([G.t("ancestors"), G.t("descendants")], [{ cells: [
        G.el("span", { id: "gg-ancestors" }, lineage.ancestors.map(codeLink).reduce(function (a, n) { if (a.length) a.push(" "); a.push(n); return a; }, [])),
        G.el("span", { id: "gg-descendants" }, lineage.descendants.map(codeLink).reduce(function (a, n) { if (a.length) a.push(" "); a.push(n); return a; }, []))] }]));
      G.showResults(G.t("timeline"), box);
      return timeline;
    }).catch(function () {});
  };
  G.registerTool({
    id: "timeline", module: "land", title: { zh: "宗地历史", en: "Parcel history" },
    activate: function () { G.showResults(G.t("timeline"), G.el("p", { class: "gg-hint", text: G.t("timelineHint") })); },
    onMapClick: function (e) {
      var params = { x: e.latlng.lng.toFixed(7), y: e.latlng.lat.toFixed(7), crs: "CRS84", layers: "cadastre_parcels", tolerance: 0.5 };
      G.api("/query/identify?" + G.qs(params), { where: "#gg-results", context: G.t("timeline") }).then(function (body) {
        var f = body.layers.cadastre_parcels && body.layers.cadastre_parcels.features[0];
        if (!f) { G.message(G.t("noParcel"), true); return; }
        G.highlight(f);
        G.parcelHistory(f.properties.parcel_code);
      }).catch(function () {});
    },
    deactivate: function () { G.highlight(null); }
  });

  /* ---------- as of a date ----------
     The cadastre tiles show today. For a past date the view's parcels come from
     /collections/cadastre_parcels/items?bbox=…&datetime=… (the OGC "as of" of a history layer), in pages,
     from zoom 16 only, so a view never pulls the whole register into the browser. */
  var asOfLayer = null, seq = 0;
  /* the end of a local calendar day as an instant: what "the register on 2024-03-01" means */
  G.asOfInstant = function (date) {
    var start = G.localInputToIso(date + "T23:59");
    return new Date(new Date(start).getTime() + 59000).toISOString().replace(".000Z", "Z");
  };
  function banner() {
    var node = document.getElementById("gg-asof-banner");
    if (!G.state.asOf) { node.className = "gg-hidden"; node.innerHTML = ""; return; }
    node.className = "";
    node.innerHTML = "";
    node.setAttribute("data-asof", G.state.asOf);
    node.appendChild(G.el("span", { id: "gg-asof-text", text: G.t("asOfBanner", { d: G.fmtDate(G.state.asOf) }) }));
    var back = G.el("button", { class: "gg-btn gg-mini", id: "gg-asof-banner-now", text: G.t("asOfNow") });
    back.addEventListener("click", function () { G.setAsOf(null); });
    node.appendChild(back);
    var info = G.el("span", { id: "gg-asof-info", class: "gg-asof-info" });
    node.appendChild(info);
  }
  function say(text) {
    var info = document.getElementById("gg-asof-info"), count = document.getElementById("gg-asof-count");
    if (info) info.textContent = text || "";
    if (count) count.textContent = text || "";
  }
  function fetchPages(url, got, mine) {
    return G.api(url, { where: "#gg-asof-banner", context: G.t("asOf") }).then(function (fc) {
      if (mine !== seq) return null;
      got = got.concat(fc.features || []);
      var next = (fc.links || []).filter(function (l) { return l.rel === "next"; })[0];
      if (next && got.length < ASOF_MAX) {
        var href = next.href.replace(/^https?:\/\/[^/]+/, "");  // same server, relative path
        return fetchPages(href, got, mine);
      }
      return { features: got, capped: Boolean(next) };
    });
  }
  function redrawAsOf() {
    if (!G.state.asOf) return Promise.resolve();
    var def = parcelsDef();
    var mine = ++seq;
    if (asOfLayer) { G.map.removeLayer(asOfLayer); asOfLayer = null; }
    if (G.map.getZoom() < ASOF_MIN_ZOOM) {
      G.state.lastAsOf = { date: G.state.asOf, count: 0, bbox: null, zoomedOut: true };
      say(G.t("asOfZoomIn", { z: ASOF_MIN_ZOOM }));
      return Promise.resolve();
    }
    var bbox = G.viewBbox();
    say(G.t("loading"));
    return fetchPages(def.items + "?" + G.qs({ bbox: bbox, datetime: G.asOfInstant(G.state.asOf), limit: ASOF_PAGE }), [], mine).then(function (res) {
      if (!res) return;
      asOfLayer = L.geoJSON({ type: "FeatureCollection", features: res.features }, { pane: "gg-vector", style: function (f) {
        return Object.assign(G.styleFor(def, f.properties || {}, G.map.getZoom()), { className: "gg-asof-parcel", color: "#7b3294", weight: 1.5 }); } }).addTo(G.map);
      G.state.lastAsOf = { date: G.state.asOf, count: res.features.length, bbox: bbox, capped: res.capped, instant: G.asOfInstant(G.state.asOf) };
      say(res.capped ? G.t("asOfCapped", { n: res.features.length }) : G.t("parcels") + ": " + res.features.length);
      document.body.setAttribute("data-asof", G.state.asOf);
    }).catch(function () {});
  }
  G.setAsOf = function (date) {
    G.state.asOf = date || null;
    var entry = G.state.layers.cadastre_parcels;
    if (entry) { entry.suppressed = Boolean(G.state.asOf); G.refreshTiles(); }
    if (entry && G.state.asOf && !entry.on) G.setLayerVisible("cadastre_parcels", true);
    G.closeIdentify && G.closeIdentify();
    banner();
    if (!G.state.asOf) {
      seq++;
      if (asOfLayer) { G.map.removeLayer(asOfLayer); asOfLayer = null; }
      document.body.removeAttribute("data-asof");
      G.state.lastAsOf = null;
      return Promise.resolve();
    }
    return redrawAsOf();
  };
  G.registerTool({
    id: "asof", module: "land", title: { zh: "历史时点", en: "As of" }, gate: "timeline",
    init: function () {
      var timer = null;
      G.map.on("moveend", function () { if (G.state.asOf) { clearTimeout(timer); timer = setTimeout(redrawAsOf, 250); } });
    },
    onLanguage: function () { banner(); },
    activate: function () {
      var date = G.el("input", { id: "gg-asof-date", type: "date" });
      date.value = G.state.asOf || G.localToday();
      var apply = G.el("button", { class: "gg-btn", id: "gg-asof-apply", text: G.t("asOfApply") });
      var now = G.el("button", { class: "gg-btn", id: "gg-asof-now", text: G.t("asOfNow") });
      apply.addEventListener("click", function () { G.setAsOf(date.value); });
      now.addEventListener("click", function () { G.setAsOf(null); });
      G.showResults(G.t("asOf"), G.el("div", { id: "gg-asof-form" }, [G.el("p", { class: "gg-hint", text: G.t("asOfHint") }),
        G.el("div", { class: "gg-form" }, [G.el("label", { text: G.t("asOfDate") }), date]),
        apply, " ", now, G.el("p", { id: "gg-asof-count", class: "gg-hint" })]));
    },
    // identify stays the click action while a date is shown: it answers for that date
    onMapClick: function (e) { if (G.identifyAt) G.identifyAt(e.latlng); }
  });
})();
