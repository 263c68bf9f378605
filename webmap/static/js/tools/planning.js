/* Planning: draw or upload a red line → the site-selection pre-review report opens (用地预审与选址);
   draw an area → its land-use area balance table (土地利用面积平衡表). */
(function () {
  "use strict";
  var G = window.GovGis;
  G.addText({
    zh: { prereview: "用地预审", balance: "面积平衡表", projectName: "项目名称", intendedUse: "拟建用途代码", drawRedline: "绘制红线",
      uploadRedline: "上传红线文件", redlineHint: "单击绘制红线范围，双击结束；或上传 GeoJSON / Shapefile(zip) / DXF / TXT",
      verdict: "结论", totalArea: "红线面积", item: "审查项", severity: "判定", openReport: "打开报告", baseYear: "基期年",
      targetPlan: "目标规划", drawArea: "绘制范围", code: "代码", className: "地类", areaBase: "基期面积", areaTarget: "目标面积",
      change: "变化", total: "合计", balanceHint: "单击绘制统计范围，双击结束", report: "预审报告", printBalance: "打印平衡表" },
    en: { prereview: "Pre-review", balance: "Balance table", projectName: "Project name", intendedUse: "Intended use code", drawRedline: "Draw red line",
      uploadRedline: "Upload red line", redlineHint: "Click to draw the red line, double-click to finish; or upload GeoJSON / zipped Shapefile / DXF / TXT",
      verdict: "Verdict", totalArea: "Red-line area", item: "Check", severity: "Result", openReport: "Open report", baseYear: "Base year",
      targetPlan: "Target plan", drawArea: "Draw area", code: "Code", className: "Class", areaBase: "Base area", areaTarget: "Target area",
      change: "Change", total: "Total", balanceHint: "Click to draw the area, double-click to finish", report: "Pre-review report", printBalance: "Print balance table" }
  });
  var redline = null;
  // the panel's words for the pre-review's check keys (the report itself is rendered by the server)
  var DOMAINS = { permanent_basic_farmland: ["永久基本农田", "Permanent basic farmland"], ecological_red_line: ["生态保护红线", "Ecological red line"],
    urban_development_boundary: ["城镇开发边界", "Urban development boundary"], planning: ["规划符合性", "Planning conformity"],
    landuse: ["土地利用现状", "Current land use"], price: ["基准地价", "Base land price"], pipelines: ["地下管线", "Underground pipelines"] };
  var SEVERITIES = { pass: ["通过", "Pass"], conditional: ["有条件通过", "Conditional"], approval: ["需报批", "Needs approval"], refused: ["不予通过", "Refused"] };
  function word(table, key) { var w = table[key]; return w ? (G.lang === "en" ? w[1] : w[0]) : key; }

  function input(id, value, type) { var n = G.el("input", { id: id, type: type || "text" }); if (value !== undefined) n.value = value; return n; }
  function showReportFrame(reportId) {
    return G.api("/planning/prereview/" + reportId + "/report.html?" + G.qs({ lang: G.lang }), { where: "#gg-prereview", context: G.t("report") }).then(function (html) {
      G.showDocument(G.t("report") + " #" + reportId, html, "gg-report-frame");
    });
  }
  function showPrereview(report) {
    G.state.lastPrereview = report;
    var box = G.el("div", { id: "gg-prereview", "data-report-id": String(report.id) });
    box.appendChild(G.table([G.t("field"), G.t("value")], [
      { cells: [G.t("projectName"), report.project_name] },
      { cells: [G.t("verdict"), report.verdict_text || report.verdict], attrs: { "data-verdict": report.verdict } },
      { cells: [G.t("totalArea"), G.fmtArea(report.total_area, true)], attrs: { "data-total-area": String(report.total_area) } }]));
    box.appendChild(G.table([G.t("item"), G.t("severity"), G.t("verdict")], (report.items || []).map(function (i) {
      return { cells: [word(DOMAINS, i.domain), word(SEVERITIES, i.severity), i.verdict], attrs: { "data-domain": i.domain, "data-severity": i.severity } };
    }), { id: "gg-prereview-items" }));
    var open = G.el("button", { class: "gg-btn", id: "gg-open-report", text: G.t("openReport") });
    open.addEventListener("click", function () { showReportFrame(report.id); });
    box.appendChild(open);
    G.showResults(G.t("prereview"), box);
    return showReportFrame(report.id);
  }
  function submitPrereview(form) {
    G.message(G.t("loading"));
    return G.api("/planning/prereview", { method: "POST", body: form, where: "#gg-prereview-form", context: G.t("prereview") })
      .then(function (report) { G.message(""); return showPrereview(report); })
      .catch(function () {});
  }
  function prereviewForm() {
    var name = input("gg-project-name", G.t("prereview") + " " + G.localToday());
    var use = input("gg-intended-use", "");
    var file = input("gg-redline-file", undefined, "file");
    var draw = G.el("button", { class: "gg-btn", id: "gg-draw-redline", text: G.t("drawRedline") });
    function baseForm() {
      var form = new FormData();
      form.append("project_name", name.value || "—");
      if (use.value) form.append("intended_use", use.value);
      return form;
    }
    draw.addEventListener("click", function () {
      if (redline) { G.map.removeLayer(redline); redline = null; }
      G.draw("polygon", { keep: true }).then(function (res) {
        redline = res.layer;
        var form = baseForm();
        G.state.lastRedline = G.toGeoJSONPolygon(res.latlngs);
        form.append("redline", JSON.stringify(G.state.lastRedline));
        form.append("format", "geojson");
        submitPrereview(form);
      }).catch(function () {});
    });
    file.addEventListener("change", function () {
      if (!file.files.length) return;
      var form = baseForm();
      form.append("file", file.files[0]);
      submitPrereview(form);
    });
    return G.el("div", { id: "gg-prereview-form" }, [G.el("div", { class: "gg-form" }, [G.el("label", { text: G.t("projectName") }), name,
      G.el("label", { text: G.t("intendedUse") }), use, G.el("label", { text: G.t("uploadRedline") }), file]), draw,
      G.el("p", { class: "gg-hint", text: G.t("redlineHint") })]);
  }

  /* balance table defaults come from the data itself: the latest survey year and the plan on the map */
  function balanceDefaults() {
    return Promise.all([
      G.api("/collections/landuse_survey/items?" + G.qs({ limit: 1, sortby: "-survey_year" }), { where: false }).catch(function () { return null; }),
      G.api("/collections/landuse_planning_zones/items?" + G.qs({ limit: 1 }), { where: false }).catch(function () { return null; })
    ]).then(function (r) {
      var s = r[0] && r[0].features[0], p = r[1] && r[1].features[0];
      return { year: s ? s.properties.survey_year : new Date().getFullYear() - 1, plan: p ? p.properties.plan_name : "" };
    });
  }
  G.showBalance = function (table) {
    G.state.lastBalance = table;
    var rows = table.rows.map(function (r) {
      return { cells: [r.code, r.name, G.fmt(r.area_0, 2), G.fmt(r.area_1, 2), G.fmt(r.change, 2)],
        attrs: { "data-code": r.code, "data-level": String(r.level), "data-change": String(r.change) } };
    });
    var box = G.el("div", { id: "gg-balance" }, [
      G.el("p", { class: "gg-hint", text: (table.base && table.base.label) + " → " + (table.target && table.target.label) + " · " + (table.area_basis_note || "") }),
      G.table([G.t("code"), G.t("className"), G.t("areaBase"), G.t("areaTarget"), G.t("change")], rows, { id: "gg-balance-table" }),
      G.el("p", { "data-total-constant": String(table.total_constant), text: table.total_note || "" })]);
    var request = G.state.lastBalanceRequest;
    if (request) {  // the printable table (with shares) is the server's document of the same request
      var print = G.el("button", { class: "gg-btn", id: "gg-print-balance", text: G.t("printBalance") });
      print.addEventListener("click", function () {
        G.api("/planning/balance?" + G.qs({ f: "html", lang: G.lang }), { json: request, where: print, context: G.t("printBalance") })
          .then(function (html) { G.showDocument(G.t("balance"), html, "gg-balance-frame"); }).catch(function () {});
      });
      box.appendChild(print);
    }
    G.showResults(G.t("balance"), box);
  };
  function balanceForm() {
    var year = input("gg-base-year", "", "number"), plan = input("gg-target-plan", "");
    balanceDefaults().then(function (d) { year.value = d.year; plan.value = d.plan; });
    var draw = G.el("button", { class: "gg-btn", id: "gg-draw-balance", text: G.t("drawArea") });
    draw.addEventListener("click", function () {
      G.draw("polygon", { keep: false }).then(function (res) {
        var geometry = G.toGeoJSONPolygon(res.latlngs);
        G.highlight(geometry, { color: "#7b3294" });
        G.message(G.t("loading"));
        return G.api("/planning/balance", { json: { geometry: geometry, base_year: Number(year.value), target_plan: plan.value || null },
          where: draw, context: G.t("balance") })
          .then(function (t) { G.message(""); G.state.lastBalanceRequest = { geometry: geometry, base_year: Number(year.value), target_plan: plan.value || null }; G.showBalance(t); });
      }).catch(function () {});
    });
    return G.el("div", {}, [G.el("div", { class: "gg-form" }, [G.el("label", { text: G.t("baseYear") }), year,
      G.el("label", { text: G.t("targetPlan") }), plan]), draw, G.el("p", { class: "gg-hint", text: G.t("balanceHint") })]);
  }
  G.registerTool({
    id: "prereview", module: "planning", title: { zh: "用地预审", en: "Pre-review" },
    activate: function () { G.showResults(G.t("prereview"), prereviewForm()); },
    deactivate: function () { G.draw.cancel(); if (redline) { G.map.removeLayer(redline); redline = null; } }
  });
  G.registerTool({
    id: "balance", module: "planning", title: { zh: "面积平衡表", en: "Balance table" },
    activate: function () { G.showResults(G.t("balance"), balanceForm()); },
    deactivate: function () { G.draw.cancel(); G.highlight(null); }
  });
})();
