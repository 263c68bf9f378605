/* Parcel dossier (宗地档案, 土地交易一站式): click a parcel, or search by code or address (坐落) → one
   answer from /land/dossier: the parcel and holder (masked per the key), constraints, registrations,
   land use now and planned, control lines, base land price, approvals, supervision cases, pipes; and
   the printable document (/land/parcels/{code}/dossier.html) in the print frame. */
(function () {
  "use strict";
  var G = window.GovGis;
  G.addText({
    zh: { dossier: "宗地档案", dossierHint: "点击宗地，或输入宗地代码/坐落查找，查看一站式档案", dossierSearch: "宗地代码或坐落",
      dossierFind: "查找", dossierPrint: "打印档案", dsHolder: "权利人", dsArea: "面积", dsUse: "用途", dsAddress: "坐落",
      dsConstraints: "使用限制与提示", dsNone: "无", dsItem: "事项", dsSeverity: "类别", dsText: "说明", dsRegistrations: "登记记录", dsLanduse: "土地利用现状", dsPlanning: "规划用途",
      dsControls: "三区三线", dsPrice: "基准地价", dsApprovals: "建设用地审批", dsCases: "土地监察案件", dsPipes: "穿越管线",
      dsNotShown: "无权查看", dsItems: "{n} 项", dsNoParcel: "此处没有宗地", dsRedline: "红线图", dsCaseMap: "案件图",
      sev_block: "限制", sev_condition: "条件", sev_info: "提示" },
    en: { dossier: "Parcel dossier", dossierHint: "Click a parcel, or search by parcel code or address, for its dossier", dossierSearch: "Parcel code or address",
      dossierFind: "Find", dossierPrint: "Print dossier", dsHolder: "Holder", dsArea: "Area", dsUse: "Land use", dsAddress: "Address",
      dsConstraints: "Constraints", dsNone: "None", dsItem: "Item", dsSeverity: "Kind", dsText: "What it means", dsRegistrations: "Registrations", dsLanduse: "Current land use", dsPlanning: "Planned use",
      dsControls: "Control lines", dsPrice: "Base land price", dsApprovals: "Land approvals", dsCases: "Supervision cases", dsPipes: "Pipes crossing",
      dsNotShown: "Not visible to your key", dsItems: "{n} items", dsNoParcel: "No parcel here", dsRedline: "Red-line map", dsCaseMap: "Case map",
      sev_block: "Restriction", sev_condition: "Condition", sev_info: "Note" }
  });

  function searchBar() {
    var input = G.el("input", { id: "gg-dossier-q", type: "search", placeholder: G.t("dossierSearch") });
    var find = G.el("button", { class: "gg-btn", id: "gg-dossier-find", text: G.t("dossierFind") });
    var bar = G.el("div", { class: "gg-dossier-search" }, [input, " ", find]);
    function go() { if (input.value.trim()) open({ q: input.value.trim() }, bar); }
    find.addEventListener("click", go);
    input.addEventListener("keydown", function (e) { if (e.key === "Enter") go(); });
    return bar;
  }
  function count(section, list) {
    if (!section || section.available === false) return G.t("dsNotShown");
    return G.t("dsItems", { n: (list || []).length });
  }
  function show(body) {
    G.state.lastDossier = body;
    G.highlight({ type: "Feature", geometry: body.geometry, properties: {} });
    var p = body.parcel;
    // the parcel layer's field metadata names the code (0501 → 0501 商业服务业设施用地), as identify does
    var parcelsDef = G.state.layers.cadastre_parcels && G.state.layers.cadastre_parcels.def;
    var box = G.el("div", { id: "gg-dossier", "data-parcel-code": body.parcel_code }, [
      searchBar(), G.el("h4", { text: body.parcel_code }),
      G.table([G.t("field"), G.t("value")], [
        { cells: [G.t("dsHolder"), p.right_holder || "—"], attrs: { "data-field": "right_holder" } },
        { cells: [G.t("dsAddress"), p.address || "—"] },
        { cells: [G.t("dsUse"), G.fmtValue(parcelsDef, "landuse_code", p.landuse_code, p)] },
        { cells: [G.t("dsArea"), G.fmtArea(body.plane_area, true)], attrs: { "data-area": String(body.plane_area) } }],
        { id: "gg-dossier-summary" }),
      G.el("h4", { text: G.t("dsConstraints") })]);
    box.appendChild(body.constraints.length ? G.table([G.t("dsSeverity"), G.t("dsText")], body.constraints.map(function (c) {
      return { cells: [G.t("sev_" + c.severity), c.text], attrs: { "data-kind": c.kind, "data-severity": c.severity } };
    }), { id: "gg-dossier-constraints" }) : G.el("p", { class: "gg-empty", text: G.t("dsNone") }));
    box.appendChild(G.table([G.t("dsItem"), G.t("value")], [
      { cells: [G.t("dsRegistrations"), G.t("dsItems", { n: body.registrations.length })] },
      { cells: [G.t("dsLanduse"), (body.landuse.classes || []).map(function (c) { return c.class_name + " " + G.fmtArea(c.plane_area); }).join("；") || "—"] },
      { cells: [G.t("dsPlanning"), (body.planning.zones || []).map(function (z) { return z.class_name + " " + G.fmtArea(z.area); }).join("；") || "—"] },
      { cells: [G.t("dsControls"), count(body.control_lines, body.control_lines.overlaps)] },
      { cells: [G.t("dsPrice"), count(body.land_price, body.land_price.by_use)] },
      { cells: [G.t("dsApprovals"), count(body.approvals, body.approvals.items)], attrs: { "data-section": "approvals" } },
      { cells: [G.t("dsCases"), count(body.supervision, body.supervision.cases)], attrs: { "data-section": "supervision" } },
      { cells: [G.t("dsPipes"), count(body.pipelines, body.pipelines.pipes)], attrs: { "data-section": "pipelines" } }],
      { id: "gg-dossier-sections" }));
    function docButton(label, path, title, attrs) {
      var b = G.el("button", Object.assign({ class: "gg-btn gg-mini", text: label }, attrs));
      b.addEventListener("click", function () {
        G.api(path, { where: box, context: title }).then(function (html) { G.showDocument(title, html, "gg-dossier-frame"); })
          .catch(function () {});
      });
      return b;
    }
    if (body.approvals.available && body.approvals.items.length) {
      box.appendChild(G.el("h4", { text: G.t("dsApprovals") }));
      box.appendChild(G.table([G.t("dsApprovals"), ""], body.approvals.items.map(function (a) {
        return { cells: [a.approval_no + " · " + a.project_name, docButton(G.t("dsRedline"), "/land/approvals/" + a.id + "/redline.html",
          G.t("dsRedline") + " " + a.approval_no, { "data-approval-id": String(a.id) })] };
      }), { id: "gg-dossier-approvals" }));
    }
    if (body.supervision.available && body.supervision.cases.length) {
      box.appendChild(G.el("h4", { text: G.t("dsCases") }));
      box.appendChild(G.table([G.t("dsCases"), ""], body.supervision.cases.map(function (c) {
        return { cells: [c.case_no, docButton(G.t("dsCaseMap"), "/land/supervision/cases/" + c.id + "/map.html",
          G.t("dsCaseMap") + " " + c.case_no, { "data-case-id": String(c.id) })] };
      }), { id: "gg-dossier-cases" }));
    }
    var print = G.el("button", { class: "gg-btn", id: "gg-dossier-print", text: G.t("dossierPrint") });
    print.addEventListener("click", function () {
      G.api("/land/parcels/" + encodeURIComponent(body.parcel_code) + "/dossier.html", { where: box, context: G.t("dossier") })
        .then(function (html) { G.showDocument(G.t("dossier") + " " + body.parcel_code, html, "gg-dossier-frame"); })
        .catch(function () {});
    });
    box.appendChild(print);
    G.showResults(G.t("dossier"), box);
    return body;
  }
  function open(params, where) {
    G.message(G.t("loading"));
    return G.api("/land/dossier?" + G.qs(params), { where: where || "#gg-results", context: G.t("dossier") }).then(function (body) {
      G.message("");
      return show(body);
    }).catch(function () {});
  }
  G.openDossier = function (code) { return open({ parcel_code: code }); };
  function start() {
    G.showResults(G.t("dossier"), G.el("div", {}, [G.el("p", { class: "gg-hint", text: G.t("dossierHint") }), searchBar()]));
  }
  G.registerTool({
    id: "dossier", module: "land", title: { zh: "宗地档案", en: "Parcel dossier" },
    activate: start,
    onMapClick: function (e) { open({ x: e.latlng.lng.toFixed(7), y: e.latlng.lat.toFixed(7), crs: "CRS84" }); },
    deactivate: function () { G.highlight(null); }
  });
})();
