/* Land: click a parcel → its timeline (versions and registrations) and lineage (splits/merges);
   an "as of" date that redraws the cadastre as the register stood on that date. */
(function () {
  "use strict";
  var G = window.GovGis;
  G.addText({
    zh: { timeline: "宗地历史", asOf: "历史时点", asOfDate: "日期", asOfApply: "显示", asOfNow: "回到现状", timelineHint: "点击宗地查看历史与谱系",
      versions: "版本", validPeriod: "有效期", registrations: "登记", lineage: "谱系", ancestors: "来源宗地", descendants: "派生宗地", parcels: "宗地数", noParcel: "此处没有宗地" },
    en: { timeline: "Parcel history", asOf: "As of", asOfDate: "Date", asOfApply: "Show", asOfNow: "Back to today", timelineHint: "Click a parcel for its timeline and lineage",
      versions: "Versions", validPeriod: "Valid", registrations: "Registrations", lineage: "Lineage", ancestors: "Ancestors", descendants: "Descendants", parcels: "Parcels", noParcel: "No parcel here" }
  });
  var VERSION_FIELDS = ["right_holder", "landuse_code", "plane_area", "status"];

  function cell(v) { return v === null || v === undefined ? "—" : (typeof v === "number" ? G.fmt(v, 2) : String(v)); }
  function day(v) { return v ? String(v).slice(0, 10) : "…"; }
  function fieldTitle(name) {
    var e = G.state.layers.cadastre_parcels, f = e && e.def.fields && e.def.fields[name];
    return f ? G.title(f) : name;
  }
  function codeLink(code) {
    var a = G.el("a", { href: "#", "data-parcel-code": code, text: code });
    a.addEventListener("click", function (e) { e.preventDefault(); G.parcelHistory(code); });
    return a;
  }
  G.parcelHistory = function (code) {
    G.message(G.t("loading"));
    var enc = encodeURIComponent(code);
    return Promise.all([G.api("/land/parcels/" + enc + "/timeline"), G.api("/land/parcels/" + enc + "/lineage")]).then(function (r) {
      G.message("");
      var timeline = r[0], lineage = r[1];
      G.state.lastTimeline = timeline; G.state.lastLineage = lineage;
      var fields = VERSION_FIELDS.filter(function (f) { return timeline.versions.some(function (v) { return f in v; }); });
      var box = G.el("div", { id: "gg-timeline", "data-parcel-code": code }, [
        G.el("h4", { text: code + " · " + G.t("versions") + " (" + timeline.versions.length + ")" }),
        G.table([G.t("validPeriod")].concat(fields.map(fieldTitle)), timeline.versions.map(function (v) {
          return { cells: [day(v.valid_from) + " – " + day(v.valid_to)].concat(fields.map(function (f) { return cell(v[f]); })) };
        }), { id: "gg-versions-table" }),
        G.el("h4", { text: G.t("registrations") + " (" + timeline.registrations.length + ")" })]);
      var regFields = timeline.registrations.length ? Object.keys(timeline.registrations[0]).filter(function (k) {
        var v = timeline.registrations[0][k]; return k !== "id" && (v === null || typeof v !== "object"); }).slice(0, 4) : [];
      box.appendChild(G.table(regFields, timeline.registrations.map(function (reg) {
        return { cells: regFields.map(function (f) { return /_at$|_on$/.test(f) ? day(reg[f]) : cell(reg[f]); }) };
      }), { id: "gg-registrations-table" }));
      box.appendChild(G.el("h4", { text: G.t("lineage") }));
      box.appendChild(G.table([G.t("ancestors"), G.t("descendants")], [{ cells: [
        G.el("span", { id: "gg-ancestors" }, lineage.ancestors.map(codeLink).reduce(function (a, n) { if (a.length) a.push(" "); a.push(n); return a; }, [])),
        G.el("span", { id: "gg-descendants" }, lineage.descendants.map(codeLink).reduce(function (a, n) { if (a.length) a.push(" "); a.push(n); return a; }, []))] }]));
      G.showResults(G.t("timeline"), box);
      return timeline;
    }).catch(function (err) { G.message(G.t("error") + ": " + err.message, true); });
  };
  G.registerTool({
    id: "timeline", module: "land", title: { zh: "宗地历史", en: "Parcel history" },
    activate: function () { G.showResults(G.t("timeline"), G.el("p", { class: "gg-hint", text: G.t("timelineHint") })); },
    onMapClick: function (e) {
      var params = { x: e.latlng.lng.toFixed(7), y: e.latlng.lat.toFixed(7), crs: "CRS84", layers: "cadastre_parcels", tolerance: 0.5 };
      G.api("/query/identify?" + G.qs(params)).then(function (body) {
        var f = body.layers.cadastre_parcels && body.layers.cadastre_parcels.features[0];
        if (!f) { G.message(G.t("noParcel"), true); return; }
        G.highlight(f);
        G.parcelHistory(f.properties.parcel_code);
      }).catch(function (err) { G.message(G.t("error") + ": " + err.message, true); });
    },
    deactivate: function () { G.highlight(null); }
  });

  /* as-of: the cadastre tiles show today; for a past date the parcels of the view are drawn from
     /collections/cadastre_parcels/items?datetime=DATE (the OGC "as of" of a history layer) */
  var asOfLayer = null, asOfDate = null;
  function redrawAsOf() {
    if (!asOfDate) return Promise.resolve();
    var def = G.state.layers.cadastre_parcels && G.state.layers.cadastre_parcels.def;
    if (!def) return Promise.resolve();
    G.message(G.t("loading"));
    return G.api(def.items + "?" + G.qs({ bbox: G.viewBbox(), datetime: asOfDate + "T23:59:59Z", limit: 10000 })).then(function (fc) {
      G.message("");
      if (asOfLayer) G.map.removeLayer(asOfLayer);
      asOfLayer = L.geoJSON(fc, { pane: "gg-line", style: function (f) {
        return Object.assign(G.styleFor(def, f.properties || {}, G.map.getZoom()), { className: "gg-asof-parcel", color: "#7b3294", weight: 1.5 }); } }).addTo(G.map);
      G.state.lastAsOf = { date: asOfDate, count: fc.features.length, bbox: G.viewBbox() };
      var info = document.getElementById("gg-asof-count");
      if (info) info.textContent = G.t("parcels") + ": " + fc.features.length;
      document.body.setAttribute("data-asof", asOfDate);
    }).catch(function (err) { G.message(G.t("error") + ": " + err.message, true); });
  }
  G.setAsOf = function (date) {
    asOfDate = date || null;
    var entry = G.state.layers.cadastre_parcels;
    if (entry && entry.leaflet && G.map.hasLayer(entry.leaflet) && asOfDate) G.map.removeLayer(entry.leaflet);
    if (!asOfDate) {
      if (asOfLayer) { G.map.removeLayer(asOfLayer); asOfLayer = null; }
      if (entry && entry.on) { entry.on = false; G.setLayerVisible("cadastre_parcels", true); }
      document.body.removeAttribute("data-asof");
      return Promise.resolve();
    }
    return redrawAsOf();
  };
  G.registerTool({
    id: "asof", module: "land", title: { zh: "历史时点", en: "As of" },
    init: function () { G.map.on("moveend", function () { if (asOfDate) redrawAsOf(); }); },
    activate: function () {
      var date = G.el("input", { id: "gg-asof-date", type: "date" });
      date.value = asOfDate || new Date().toISOString().slice(0, 10);
      var apply = G.el("button", { class: "gg-btn", id: "gg-asof-apply", text: G.t("asOfApply") });
      var now = G.el("button", { class: "gg-btn", id: "gg-asof-now", text: G.t("asOfNow") });
      apply.addEventListener("click", function () { G.setAsOf(date.value); });
      now.addEventListener("click", function () { G.setAsOf(null); });
      G.showResults(G.t("asOf"), G.el("div", {}, [G.el("div", { class: "gg-form" }, [G.el("label", { text: G.t("asOfDate") }), date]),
        apply, " ", now, G.el("p", { id: "gg-asof-count", class: "gg-hint" })]));
    }
  });
})();
