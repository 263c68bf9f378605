/* 应急指挥 (emergency command): the incident list and intake by a click (source line 110/119/120/122/市政,
   type, level), dispatch of the N units that reach the incident first by road (routes and ETAs drawn,
   派出 / 到场 / 归队), service areas (等时圈 5/10/15 min), live fire coverage with its gap layer, the impact
   report of an incident area, shelter allocation drawn as lines with the evacuation routes.
   One script, several tools; forms and buttons that write appear only when layers.json says the key may
   (em_intake, em_assign, em_impact_area). Times are the city's local time to the minute. */
(function () {
  "use strict";
  var G = window.GovGis;
  G.addText({
    zh: {
      emIncidents: "接警与事件", emDispatch: "调派力量", emIsochrones: "等时圈", emCoverage: "消防覆盖", emImpact: "影响评估",
      emShelters: "避难安置",
      emIntake: "接警", emSource: "来源", emType: "事件类型", emLevel: "等级", emDesc: "简要情况", emPhone: "报警人电话", emClickPlace: "在地图上点击事件位置",
      emPlaced: "事件位置已选定：{lon}°E {lat}°N（可再次点击更改）", emReport: "确认接警", emNoPlace: "请先在地图上点击事件位置，再确认接警",
      emReported: "已接警：{code}", emList: "事件列表（最新在前）", emNoIncidents: "暂无事件", emCode: "编号", emStatus: "状态",
      emReportedAt: "接报时间", emChoose: "请先在“接警与事件”中选择或新建一个事件", emSelected: "当前事件", emHistory: "状态记录",
      emTime: "时间", emAssignments: "已派力量", emUnit: "力量", emEtaAt: "预计到达", emArrived: "到场", emReleased: "归队",
      emArrive: "到场", emRelease: "归队", emLog: "事件日志", emNoAssignments: "尚未派出力量", emDuplicates: "可能重复的报警",
      emMoveTo: "推进到", emMove: "确定", emCapability: "力量类型", emKind: "类别", emKindAll: "全部", emCount: "数量",
      emFind: "查找最近力量", emFinding: "正在按道路行驶时间查找…", emRank: "序号", emName: "名称", emEta: "预计用时",
      emTravel: "行驶", emTurnout: "出动准备", emDistance: "距离", emMethod: "方式", emAssign: "派出", emAssigned: "已派出",
      emAssignedMsg: "已派出 {name}，预计 {eta} 到达", emNoUnits: "没有可调派的此类力量", emStraight: "直线估计",
      emConsidered: "候选 {n} 支，按路网行驶时间＋出动准备时间排序", emShowCoverage: "显示消防覆盖缺口（实时）",
      emCovStations: "可出动消防力量", emCovArea: "研究区面积", emCovCovered: "5 分钟覆盖面积", emCovGap: "未覆盖面积",
      emCovPop: "未覆盖人口（估算）", emCovRule: "GB 51080 §4.1.3：接警后 5 分钟（含出动准备 {t} 秒）到达", emCovLive: "实时（仅可出动力量）",
      emCovUpdated: "更新于 {t}", emCovLoading: "正在计算消防覆盖…", emIsoHint: "点击地图任一点（或用当前事件）计算 5/10/15 分钟等时圈",
      emUseIncident: "用当前事件位置", emMinutes: "分钟", emArea: "面积", emIsoReached: "可达路口", emDrawArea: "画影响范围",
      emUseStored: "用事件已存的影响范围", emSaveArea: "保存为事件影响范围", emSaved: "已保存影响范围（第 {v} 版）",
      emPopulation: "人口（估算）", emParcels: "宗地", emCritical: "医院与学校", emHospitals: "医院（床位）", emPipes: "管线",
      emSheltersInside: "范围内避难场所", emNoAccess: "您的密钥无权查看", emAllocate: "计算避难安置",
      emAffected: "需安置 {a} 人，已安置 {p} 人，无处安置 {u} 人", emShelter: "避难场所", emPersons: "人数", emMinutesCol: "用时",
      emFree: "空余", emHazard: "危险范围：{h}", emHazardDrawn: "所画范围", emHazardStored: "事件影响范围",
      emEvacRoute: "疏散路线", emEvacHint: "点击一行显示其疏散路线（避开危险范围）", emInHazard: "危险区内路段",
      emAllocating: "正在计算最优安置（最小费用流）…", emKm2: "km²", emLevel1: "Ⅰ级（特别重大）", emLevel2: "Ⅱ级（重大）",
      emLevel3: "Ⅲ级（较大）", emLevel4: "Ⅳ级（一般）",
      emAddress: "地址", emPipeCount: "管段数", emLength: "长度", emUtility: "管线类别", emCapacity: "容量", emOccupancy: "已安置"
    },
    en: {
      emIncidents: "Calls & incidents", emDispatch: "Dispatch", emIsochrones: "Service areas", emCoverage: "Fire coverage", emImpact: "Impact",
      emShelters: "Shelters",
      emIntake: "Take a call", emSource: "Line", emType: "Type", emLevel: "Level", emDesc: "Situation", emPhone: "Caller's phone", emClickPlace: "Click the incident's place on the map",
      emPlaced: "Place chosen: {lon}°E {lat}°N (click again to move it)", emReport: "Record the call", emNoPlace: "Click the incident's place on the map first",
      emReported: "Call recorded: {code}", emList: "Incidents (newest first)", emNoIncidents: "No incidents", emCode: "Code", emStatus: "Status",
      emReportedAt: "Reported", emChoose: "Choose or record an incident under “Calls & incidents” first", emSelected: "Incident", emHistory: "Status history",
      emTime: "Time", emAssignments: "Units assigned", emUnit: "Unit", emEtaAt: "ETA", emArrived: "Arrived", emReleased: "Released",
      emArrive: "Arrived", emRelease: "Release", emLog: "Log", emNoAssignments: "No unit assigned yet", emDuplicates: "Possible duplicates",
      emMoveTo: "Move to", emMove: "Apply", emCapability: "Capability", emKind: "Kind", emKindAll: "All", emCount: "Count",
      emFind: "Find nearest units", emFinding: "Searching by road travel time…", emRank: "No.", emName: "Name", emEta: "ETA",
      emTravel: "Travel", emTurnout: "Turnout", emDistance: "Distance", emMethod: "Method", emAssign: "Assign", emAssigned: "Assigned",
      emAssignedMsg: "{name} assigned, expected at {eta}", emNoUnits: "No available unit of this kind", emStraight: "straight line",
      emConsidered: "{n} candidates, by road travel time + turnout", emShowCoverage: "Show fire coverage gaps (live)",
      emCovStations: "Fire units available", emCovArea: "Study area", emCovCovered: "Covered in 5 min", emCovGap: "Not covered",
      emCovPop: "Population not covered (est.)", emCovRule: "GB 51080 §4.1.3: on scene within 5 min of the call (turnout {t} s included)", emCovLive: "Live (available units only)",
      emCovUpdated: "updated {t}", emCovLoading: "Computing fire coverage…", emIsoHint: "Click any point (or use the incident) for 5/10/15-minute service areas",
      emUseIncident: "Use the incident's place", emMinutes: "min", emArea: "Area", emIsoReached: "Junctions reached", emDrawArea: "Draw the impact area",
      emUseStored: "Use the incident's stored impact area", emSaveArea: "Save as the incident's impact area", emSaved: "Impact area saved (version {v})",
      emPopulation: "Population (est.)", emParcels: "Parcels", emCritical: "Hospitals and schools", emHospitals: "Hospitals (beds)", emPipes: "Pipes",
      emSheltersInside: "Shelters inside", emNoAccess: "Your key may not read this", emAllocate: "Allocate shelters",
      emAffected: "{a} to shelter, {p} placed, {u} without a place", emShelter: "Shelter", emPersons: "Persons", emMinutesCol: "Time",
      emFree: "Free", emHazard: "Hazard: {h}", emHazardDrawn: "drawn area", emHazardStored: "incident's impact area",
      emEvacRoute: "Evacuation route", emEvacHint: "Click a row to show its evacuation route (avoiding the hazard)", emInHazard: "Inside the hazard",
      emAllocating: "Computing the optimal allocation (min-cost flow)…", emKm2: "km²", emLevel1: "I (extraordinary)", emLevel2: "II (major)",
      emLevel3: "III (large)", emLevel4: "IV (ordinary)",
      emAddress: "Address", emPipeCount: "Pipes", emLength: "Length", emUtility: "Utility", emCapacity: "Capacity", emOccupancy: "Occupancy"
    }
  });

  var LINES = ["119", "120", "110", "122", "municipal"];
  var NEXT = { reported: ["dispatched", "closed"], dispatched: ["on_scene", "closed"], on_scene: ["under_control", "closed"],
    under_control: ["closed"], closed: [] };
  var ROUTE_COLORS = ["#d7191c", "#1f78b4", "#33a02c", "#ff7f00", "#6a3d9a", "#b15928", "#e7298a", "#666666", "#1b9e77", "#a6761d"];
  var ISO_COLORS = ["#1a9850", "#fee08b", "#f46d43"];  // inner to outer
  var ISO_PRESETS = ["5,10,15", "3,6,9", "1,2,3"];  // minutes; a small district is covered by 5 already
  var em = G.state.em = { incidents: [], types: null, selected: null, intake: { line: "119", type: "XF01", level: 3, at: null },
    dispatch: null, coverage: null, coverageOn: false, hazard: null, capabilities: null };
  var layers = {};  // name → L.featureGroup (intake, dispatch, iso, coverage, impact, shelters)

  function group(name) {
    if (!layers[name]) layers[name] = L.featureGroup().addTo(G.map);
    return layers[name];
  }
  function clearGroup(name) { if (layers[name]) { G.map.removeLayer(layers[name]); delete layers[name]; } }
  function showLayers(ids) { ids.forEach(function (id) { if (G.state.layers[id] && !G.state.layers[id].on) G.setLayerVisible(id, true); }); }
  /* after a write: the resource and incident symbols come from tiles, drawn again from the server */
  function redrawTiles() { if (G.tiles) { G.tiles.clearCache(); G.refreshTiles(); } }
  function clock(date) { var s = G.fmtDateTime(date); return s.slice(s.lastIndexOf(" ") + 1); }
  function duration(seconds) {
    var s = Math.round(Number(seconds)), m = Math.floor(s / 60), r = s % 60;
    return G.lang === "en" ? m + " min " + r + " s" : m + " 分 " + r + " 秒";
  }
  function levelText(level) { return G.t("emLevel" + level); }
  function lineText(line) { return G.t("line_" + line); }
  function statusText(status) { return G.t("em_status_" + status); }
  /* a type's name in the UI language (the code list has both); the stored Chinese name until it is loaded */
  function typeName(code) {
    var t = em.types && em.types[code];
    return t ? (G.lang === "en" ? t.name_en : t.name_zh) : code;
  }
  function incidentIcon(status) {
    var def = G.state.layers.emergency_incidents && G.state.layers.emergency_incidents.def;
    var color = "#d7191c";
    if (def && def.emergency) def.emergency.status_colors.forEach(function (s) { if (s.status === status) color = s.color; });
    var svg = '<svg width="30" height="30" viewBox="0 0 18 18" xmlns="http://www.w3.org/2000/svg"><path d="M9 0.8L11 5.5L15.8 3.2L13.5 8L17.5 10L12.8 11.8L14.5 17L9 13.8L3.5 17L5.2 11.8L0.5 10L4.5 8L2.2 3.2L7 5.5Z" ' +
      'fill="' + color + '" stroke="#fff" stroke-width="1.2" stroke-linejoin="round"/></svg>';
    return L.divIcon({ className: "", html: '<div class="gg-em-incident-marker" data-status="' + status + '">' + svg + "</div>", iconSize: [30, 30], iconAnchor: [15, 15] });
  }
  /* a problem next to what caused it; a 409 in the emergency's own words */
  function problem(where, err, context) {
    if (err && err.status === 409) err.slug = "em-conflict";
    G.showProblem(where, err, context);
  }
  function call(path, options, where, context) {
    return G.api(path, Object.assign({ where: false }, options)).catch(function (err) {
      if (err && err.name !== "AbortError") problem(where, err, context);
      throw err;
    });
  }
  function loadTypes() {
    if (em.types) return Promise.resolve(em.types);
    return G.api("/emergency/incident-types", { where: false, silent: true }).then(function (rows) {
      em.types = {};
      rows.forEach(function (r) { em.types[r.code] = r; });
      return em.types;
    });
  }

  /* ---------- incidents: intake and list ---------- */
  function intakeForm() {
    var st = em.intake;
    var line = G.el("select", { id: "gg-em-line" }, LINES.map(function (l) {
      var o = G.el("option", { value: l, text: lineText(l) }); o.selected = st.line === l; return o; }));
    var type = G.el("select", { id: "gg-em-type" });
    function fillTypes() {
      type.innerHTML = "";
      var rows = Object.keys(em.types || {}).map(function (c) { return em.types[c]; }).filter(function (r) { return r.level === "2"; });
      // the types of the chosen line first, then the others (a 110 call may report a fire)
      rows.sort(function (a, b) { return (a.source_line === st.line ? 0 : 1) - (b.source_line === st.line ? 0 : 1) || (a.code < b.code ? -1 : 1); });
      rows.forEach(function (r) {
        var o = G.el("option", { value: r.code, text: r.code + " " + (G.lang === "en" ? r.name_en : r.name_zh) });
        o.selected = st.type === r.code; type.appendChild(o);
      });
      if (!rows.some(function (r) { return r.code === st.type; }) && rows.length) { st.type = rows[0].code; type.value = st.type; }
    }
    line.addEventListener("change", function () {
      st.line = line.value;
      var first = Object.keys(em.types || {}).filter(function (c) { return em.types[c].level === "2" && em.types[c].source_line === st.line; })[0];
      if (first) st.type = first;
      fillTypes();
    });
    type.addEventListener("change", function () { st.type = type.value; });
    var level = G.el("select", { id: "gg-em-level" }, [1, 2, 3, 4].map(function (n) {
      var o = G.el("option", { value: String(n), text: levelText(n) }); o.selected = st.level === n; return o; }));
    level.addEventListener("change", function () { st.level = Number(level.value); });
    var desc = G.el("input", { id: "gg-em-desc", type: "text", maxlength: "400" });
    // the caller's number is personal data: stored, but shown back only to keys with the personal-data scope
    var phone = G.el("input", { id: "gg-em-phone", type: "tel", maxlength: "40", autocomplete: "off" });
    var place = G.el("p", { id: "gg-em-place", class: "gg-hint", text: st.at ? G.t("emPlaced", { lon: st.at.lng.toFixed(6), lat: st.at.lat.toFixed(6) }) : G.t("emClickPlace") });
    var report = G.el("button", { class: "gg-btn gg-primary", id: "gg-em-report", text: G.t("emReport") });
    report.addEventListener("click", function () { takeCall(report, desc.value, phone.value.trim()); });
    loadTypes().then(fillTypes).catch(function () {});
    return G.el("div", { id: "gg-em-intake" }, [G.el("h4", { text: G.t("emIntake") }),
      G.el("div", { class: "gg-form" }, [G.el("label", { text: G.t("emSource") }), line, G.el("label", { text: G.t("emType") }), type,
        G.el("label", { text: G.t("emLevel") }), level, G.el("label", { text: G.t("emDesc") }), desc,
        G.el("label", { text: G.t("emPhone") }), phone]), place, report]);
  }
  function placeCall(latlng) {
    em.intake.at = latlng;
    var marker = group("intake");
    marker.clearLayers();
    L.marker(latlng, { icon: incidentIcon("reported"), pane: "gg-marker", interactive: false }).addTo(marker);
    var place = document.getElementById("gg-em-place");
    if (place) place.textContent = G.t("emPlaced", { lon: latlng.lng.toFixed(6), lat: latlng.lat.toFixed(6) });
    var report = document.getElementById("gg-em-report");
    if (report) G.clearProblem(report);
  }
  function takeCall(button, description, phone) {
    var st = em.intake;
    G.clearProblem(button);
    if (!st.at) {
      G.showProblem(button, { slug: "em-no-place" });
      return Promise.resolve(null);
    }
    button.disabled = true;
    return call("/emergency/incidents", { json: { source_line: st.line, type_code: st.type, level: st.level, lon: st.at.lng, lat: st.at.lat,
      description: description || null, reporter_phone: phone || null } }, button, G.t("emIntake")).then(function (made) {
      button.disabled = false;
      st.at = null;
      clearGroup("intake");
      G.message(G.t("emReported", { code: made.code }));
      redrawTiles();
      G.emit("emergency:incident", made);
      return selectIncident(made.id).then(function () { return made; });
    }, function () { button.disabled = false; return null; });
  }
  function loadIncidents() {
    return G.api("/emergency/incidents?limit=50", { where: false, silent: true }).then(function (rows) { em.incidents = rows; return rows; });
  }
  function incidentTable() {
    var open = em.incidents.filter(function (i) { return i.status !== "closed"; });
    if (!open.length) return G.el("p", { class: "gg-empty", text: G.t("emNoIncidents") });
    return G.table([G.t("emCode"), G.t("emType"), G.t("emLevel"), G.t("emStatus"), G.t("emReportedAt")], open.map(function (i) {
      return { cells: [i.code, i.type_code ? typeName(i.type_code) : i.incident_type, "Ⅰ Ⅱ Ⅲ Ⅳ".split(" ")[i.level - 1] || i.level, statusText(i.status), G.fmtDateTime(i.reported_at)],
        attrs: { "data-incident-id": String(i.id), "class": em.selected && em.selected.id === i.id ? "gg-selected" : "" },
        onclick: function () { selectIncident(i.id); } };
    }), { id: "gg-em-list" });
  }
  function incidentsPanel() {
    var box = G.el("div", { id: "gg-em-incidents" });
    if (G.allowed("em_intake")) box.appendChild(intakeForm());
    if (em.selected) box.appendChild(detailView(em.selected));
    box.appendChild(G.el("h4", { text: G.t("emList") }));
    var list = G.el("div", { id: "gg-em-list-box" }, [G.el("p", { class: "gg-hint", text: G.t("loading") })]);
    box.appendChild(list);
    G.showResults(G.t("emIncidents"), box);
    loadTypes().catch(function () {}).then(loadIncidents).then(function () { list.innerHTML = ""; list.appendChild(incidentTable()); }).catch(function (err) { problem(list, err, G.t("emList")); });
  }
  function selectIncident(id) {
    return call("/emergency/incidents/" + id, {}, document.getElementById("gg-results"), G.t("emSelected")).then(function (detail) {
      em.selected = detail;
      document.body.setAttribute("data-em-incident", String(detail.id));
      drawSelected();
      rerenderActive();
      G.emit("emergency:selected", detail);
      return detail;
    }).catch(function () { return null; });
  }
  function drawSelected() {
    var g = group("selected");
    g.clearLayers();
    var inc = em.selected;
    if (!inc) return;
    var c = inc.point.coordinates;
    L.marker([c[1], c[0]], { icon: incidentIcon(inc.status), pane: "gg-marker", title: inc.code }).addTo(g)
      .bindTooltip(inc.code + " " + inc.incident_type, { permanent: true, direction: "top", offset: [0, -14], className: "gg-code-label" });
  }
  function detailView(inc) {
    var box = G.el("div", { id: "gg-em-detail", "data-incident-id": String(inc.id), "data-status": inc.status });
    box.appendChild(G.el("h4", { text: G.t("emSelected") + " " + inc.code }));
    box.appendChild(G.table([G.t("field"), G.t("value")], [
      { cells: [G.t("emSource"), lineText(inc.source_line)] },
      { cells: [G.t("emType"), (inc.type_code ? inc.type_code + " " : "") + inc.incident_type + (inc.category ? "（" + inc.category + "）" : "")] },
      { cells: [G.t("emLevel"), levelText(inc.level)] },
      { cells: [G.t("emStatus"), statusText(inc.status)], attrs: { "data-field": "status" } },
      { cells: [G.t("emReportedAt"), G.fmtDateTime(inc.reported_at)], attrs: { "data-field": "reported_at" } },
      { cells: [G.t("emDesc"), inc.description || "—"] },
      { cells: [G.t("emPhone"), inc.reporter_phone || "—"], attrs: { "data-field": "reporter_phone" } }
    ], { class: "gg-table gg-kv", id: "gg-em-summary" }));
    if (G.allowed("em_intake") && (NEXT[inc.status] || []).length) {
      var next = G.el("select", { id: "gg-em-next" }, NEXT[inc.status].map(function (s) { return G.el("option", { value: s, text: statusText(s) }); }));
      var move = G.el("button", { class: "gg-btn", id: "gg-em-move", text: G.t("emMove") });
      move.addEventListener("click", function () {
        call("/emergency/incidents/" + inc.id + "/status", { json: { status: next.value, version: inc.version } }, move, G.t("emMoveTo"))
          .then(function () { redrawTiles(); return selectIncident(inc.id); }).catch(function () {});
      });
      box.appendChild(G.el("div", { class: "gg-form" }, [G.el("label", { text: G.t("emMoveTo") }), G.el("span", {}, [next, " ", move])]));
    }
    var flagged = (inc.duplicates || []).filter(function (d) { return d.state === "flagged"; });
    if (flagged.length) {
      var codes = flagged.map(function (d) {
        var other = d.incident_id === inc.id ? d.candidate_id : d.incident_id;
        var known = em.incidents.filter(function (i) { return i.id === other; })[0];
        return (known ? known.code : "#" + other) + "（" + G.fmtNumber(d.distance_m, 0) + " m）";
      });
      box.appendChild(G.el("p", { class: "gg-notice", id: "gg-em-duplicates", text: G.t("emDuplicates") + "：" + codes.join("、") }));
    }
    box.appendChild(G.el("h4", { text: G.t("emHistory") }));
    box.appendChild(G.table([G.t("emStatus"), G.t("emTime")], (inc.status_history || []).map(function (h) {
      return { cells: [statusText(h.status), G.fmtDateTime(h.at)], attrs: { "data-history-status": h.status } };
    }), { id: "gg-em-history" }));
    box.appendChild(assignmentsView(inc));
    return box;
  }
  function assignmentsView(inc) {
    var box = G.el("div", { id: "gg-em-assignments-box" }, [G.el("h4", { text: G.t("emAssignments") })]);
    var rows = inc.assignments || [];
    if (!rows.length) { box.appendChild(G.el("p", { class: "gg-hint", text: G.t("emNoAssignments") })); return box; }
    var writer = G.allowed("em_assign");
    box.appendChild(G.table([G.t("emUnit"), G.t("emEtaAt"), G.t("emArrived"), G.t("emReleased"), ""], rows.map(function (a) {
      var buttons = G.el("span");
      if (writer && !a.released_at) {
        if (!a.arrived_at) {
          var arrive = G.el("button", { class: "gg-btn gg-mini", "data-arrive": String(a.id), text: G.t("emArrive") });
          arrive.addEventListener("click", function (e) { e.stopPropagation(); unitStep(a, "arrival", arrive); });
          buttons.appendChild(arrive);
        }
        var release = G.el("button", { class: "gg-btn gg-mini", "data-release": String(a.id), text: G.t("emRelease") });
        release.addEventListener("click", function (e) { e.stopPropagation(); unitStep(a, "release", release); });
        buttons.appendChild(release);
      }
      return { cells: [a.name + (a.method === "straight_line" ? "（" + G.t("emStraight") + "）" : ""), G.fmtDateTime(a.eta_at),
        G.fmtDateTime(a.arrived_at) || "—", G.fmtDateTime(a.released_at) || "—", buttons],
        attrs: { "data-assignment-id": String(a.id), "data-resource-id": String(a.resource_id) } };
    }), { id: "gg-em-assignments" }));
    return box;
  }
  function unitStep(assignment, step, button) {
    button.disabled = true;
    return call("/emergency/assignments/" + assignment.id + "/" + step, { method: "POST" }, button, G.t(step === "arrival" ? "emArrive" : "emRelease"))
      .then(function () {
        redrawTiles();
        G.emit("emergency:units", { step: step, assignment: assignment });
        return selectIncident(assignment.incident_id);
      }, function () { button.disabled = false; });
  }
  /* the active emergency tool's panel again, for the incident now selected */
  function rerenderActive() {
    var render = { em_incidents: incidentsPanel, em_dispatch: renderDispatch, em_impact: impactPanel, em_shelters: sheltersPanel }[G.state.activeTool];
    if (render) render();
  }
  /* a tool that works on an incident, with none chosen yet: say so, and offer the open incidents */
  function needIncident(title) {
    if (em.selected) return false;
    var list = G.el("div", { id: "gg-em-list-box" });
    G.showResults(title, G.el("div", {}, [G.el("p", { class: "gg-hint", id: "gg-em-need-incident", text: G.t("emChoose") }), list]));
    if (G.allowed("em_incidents")) {
      loadIncidents().then(function () { list.appendChild(incidentTable()); }).catch(function (err) { problem(list, err, G.t("emList")); });
    }
    return true;
  }

  /* ---------- dispatch: the N units that reach the incident first ---------- */
  function defaultCapability(inc) {
    var byLine = { "119": "消防救援", "120": "医疗急救", "110": "城市搜救", "122": "工程抢险" };
    var byType = { SZ01: "供水抢修", SZ02: "燃气抢修" };
    return byType[inc.type_code] || byLine[inc.source_line] || "消防救援";
  }
  function loadCapabilities() {
    if (em.capabilities) return Promise.resolve(em.capabilities);
    return G.api("/emergency/resources", { where: false, silent: true }).then(function (rows) {
      var seen = [];
      rows.forEach(function (r) { if (seen.indexOf(r.capability_type) < 0) seen.push(r.capability_type); });
      em.capabilities = seen;
      return seen;
    });
  }
  function renderDispatch() {
    if (needIncident(G.t("emDispatch"))) return;
    var inc = em.selected;
    var form = em.dispatchForm = em.dispatchForm && em.dispatchForm.incident === inc.id ? em.dispatchForm :
      { incident: inc.id, capability: defaultCapability(inc), kind: inc.source_line === "119" ? "vehicle" : "", n: 3 };
    var cap = G.el("select", { id: "gg-em-cap" });
    loadCapabilities().then(function (list) {
      if (list.indexOf(form.capability) < 0) list = [form.capability].concat(list);
      list.forEach(function (c) { var o = G.el("option", { value: c, text: c }); o.selected = c === form.capability; cap.appendChild(o); });
    }).catch(function () { cap.appendChild(G.el("option", { value: form.capability, text: form.capability })); });
    cap.addEventListener("change", function () { form.capability = cap.value; });
    var kind = G.el("select", { id: "gg-em-kind" }, ["", "vehicle", "team", "station", "hospital"].map(function (k) {
      var o = G.el("option", { value: k, text: k ? G.t("em_kind_" + k) : G.t("emKindAll") }); o.selected = form.kind === k; return o; }));
    kind.addEventListener("change", function () { form.kind = kind.value; });
    var n = G.el("input", { id: "gg-em-n", type: "number", min: "1", max: "20", value: String(form.n) });
    n.addEventListener("change", function () { form.n = Math.max(1, Math.min(20, Number(n.value) || 3)); });
    var find = G.el("button", { class: "gg-btn gg-primary", id: "gg-em-find", text: G.t("emFind") });
    find.addEventListener("click", function () { dispatch(find); });
    var box = G.el("div", { id: "gg-em-dispatch", "data-incident-id": String(inc.id) }, [
      G.el("p", {}, [G.el("strong", { text: inc.code + " " + inc.incident_type }), " · " + levelText(inc.level) + " · " + statusText(inc.status)]),
      G.el("div", { class: "gg-form" }, [G.el("label", { text: G.t("emCapability") }), cap, G.el("label", { text: G.t("emKind") }), kind,
        G.el("label", { text: G.t("emCount") }), n]), find, G.el("div", { id: "gg-em-units-box" })]);
    if (G.allowed("em_coverage")) box.appendChild(coverageToggle());
    box.appendChild(assignmentsView(inc));
    G.showResults(G.t("emDispatch"), box);
    if (em.dispatch && em.dispatch.incident_id === inc.id) showUnits(em.dispatch);
    if (em.coverageOn) renderCoverageBoxes();
  }
  function dispatch(button) {
    var inc = em.selected, form = em.dispatchForm;
    var out = document.getElementById("gg-em-units-box");
    out.innerHTML = "";
    out.appendChild(G.el("p", { class: "gg-hint", text: G.t("emFinding") }));
    var qs = G.qs({ capability_type: form.capability, kind: form.kind, n: form.n });
    return call("/emergency/incidents/" + inc.id + "/dispatch?" + qs, {}, button, G.t("emDispatch")).then(function (body) {
      body.asked_at = Date.now();
      em.dispatch = body;
      showUnits(body);
      document.body.setAttribute("data-em-dispatch", String(body.units.length));
      return body;
    }, function () { out.innerHTML = ""; return null; });
  }
  function showUnits(body) {
    var out = document.getElementById("gg-em-units-box");
    if (!out) return;
    out.innerHTML = "";
    var g = group("dispatch");
    g.clearLayers();
    if (!body.units.length) { out.appendChild(G.el("p", { class: "gg-empty", text: G.t("emNoUnits") })); return; }
    out.appendChild(G.el("p", { class: "gg-hint", text: G.t("emConsidered", { n: body.candidates_considered }) }));
    var writer = G.allowed("em_assign");
    var assigned = {};
    (em.selected.assignments || []).forEach(function (a) { if (!a.released_at) assigned[a.resource_id] = true; });
    out.appendChild(G.table([G.t("emRank"), G.t("emName"), G.t("emEta"), G.t("emEtaAt"), G.t("emDistance"), ""], body.units.map(function (u) {
      var r = u.resource, cell = G.el("span");
      if (assigned[r.id]) cell.appendChild(G.el("span", { class: "gg-hint", "data-assigned": String(r.id), text: G.t("emAssigned") }));
      else if (writer) {
        var btn = G.el("button", { class: "gg-btn gg-mini gg-primary", "data-assign": String(r.id), text: G.t("emAssign") });
        btn.addEventListener("click", function (e) { e.stopPropagation(); assign(u, btn); });
        cell.appendChild(btn);
      }
      var eta = G.el("span", { title: G.t("emTravel") + " " + duration(u.travel_s) + " + " + G.t("emTurnout") + " " + duration(u.turnout_s),
        text: duration(u.eta_s) + (u.method === "straight_line" ? "（" + G.t("emStraight") + "）" : "") });
      return { cells: [u.rank, r.name + " · " + G.t("em_kind_" + r.kind), eta, clock(new Date(body.asked_at + u.eta_s * 1000)),
        u.distance_m !== null ? G.fmtLength(u.distance_m) : "—", cell],
        attrs: { "data-resource-id": String(r.id), "data-rank": String(u.rank), "data-eta-s": String(u.eta_s), "data-method": u.method },
        onclick: function () { var c = r.point.coordinates; G.map.setView([c[1], c[0]], Math.max(G.map.getZoom(), 16)); } };
    }), { id: "gg-em-units" }));
    // the routes, one colour per rank, with the unit's name and ETA at its start
    body.units.slice().reverse().forEach(function (u) {
      var color = ROUTE_COLORS[(u.rank - 1) % ROUTE_COLORS.length];
      if (u.route) {
        L.geoJSON(u.route, { pane: "gg-highlight", style: { color: "#ffffff", weight: 8, opacity: 0.8, className: "gg-em-route-halo" } }).addTo(g);
        L.geoJSON(u.route, { pane: "gg-highlight", style: { color: color, weight: 4.5, opacity: 0.95, dashArray: u.method === "straight_line" ? "6 6" : null,
          className: "gg-em-route gg-em-route-" + u.rank } }).addTo(g);
      }
      var c = u.resource.point.coordinates;
      L.marker([c[1], c[0]], { pane: "gg-marker", interactive: false, icon: L.divIcon({ className: "", iconSize: null, iconAnchor: [-10, 10],
        html: '<span class="gg-em-eta-label" data-rank="' + u.rank + '" style="background:' + color + '">' + u.rank + " " + u.resource.name + " · " + duration(u.eta_s) + "</span>" }) }).addTo(g);
    });
    var ip = body.incident_point.coordinates;
    L.marker([ip[1], ip[0]], { icon: incidentIcon(em.selected.status), pane: "gg-marker", interactive: false }).addTo(g);
    var b = g.getBounds();
    if (b.isValid()) G.map.fitBounds(b, { maxZoom: 17, padding: [40, 40] });
  }
  function assign(unit, button) {
    var inc = em.selected;
    button.disabled = true;
    return call("/emergency/incidents/" + inc.id + "/assignments", { json: { resource_id: unit.resource.id } }, button,
      G.t("emAssign") + " " + unit.resource.name).then(function (made) {
      G.message(G.t("emAssignedMsg", { name: made.resource, eta: G.fmtDateTime(made.eta_at) }));
      redrawTiles();
      G.emit("emergency:units", { step: "assign", assignment: made });
      return selectIncident(inc.id).then(function () { return made; });
    }, function () { button.disabled = false; return null; });
  }

  /* ---------- live fire coverage and its gap layer ---------- */
  function coverageToggle() {
    var check = G.el("input", { type: "checkbox", id: "gg-em-cov-toggle" });
    check.checked = em.coverageOn;
    check.addEventListener("change", function () { setCoverage(check.checked); });
    return G.el("div", { class: "gg-em-cov" }, [G.el("label", { class: "gg-choice-item" }, [check, G.t("emShowCoverage")]),
      G.el("div", { class: "gg-em-cov-box" })]);
  }
  function setCoverage(on) {
    em.coverageOn = on;
    document.querySelectorAll("#gg-em-cov-toggle").forEach(function (c) { c.checked = on; });
    if (!on) { clearGroup("coverage"); em.coverage = null; renderCoverageBoxes(); document.body.removeAttribute("data-em-coverage"); return Promise.resolve(null); }
    return refreshCoverage();
  }
  function refreshCoverage() {
    var boxes = document.querySelectorAll(".gg-em-cov-box");
    boxes.forEach(function (b) { b.innerHTML = ""; b.appendChild(G.el("p", { class: "gg-hint", text: G.t("emCovLoading") })); });
    var seq = em.coverageSeq = (em.coverageSeq || 0) + 1;
    return call("/emergency/coverage", { json: { live: true } }, boxes[0] || document.getElementById("gg-results"), G.t("emCoverage")).then(function (body) {
      if (seq !== em.coverageSeq || !em.coverageOn) return null;
      body.at = new Date();
      em.coverage = body;
      em.coverageCount = (em.coverageCount || 0) + 1;
      drawCoverage(body);
      renderCoverageBoxes();
      document.body.setAttribute("data-em-coverage", String(em.coverageCount));
      return body;
    }).catch(function () { return null; });
  }
  function drawCoverage(body) {
    var g = group("coverage");
    g.clearLayers();
    if (body.covered) L.geoJSON(body.covered, { pane: "gg-vector", interactive: false,
      style: { color: "#1a9850", weight: 1, opacity: 0.6, fillColor: "#1a9850", fillOpacity: 0.08, className: "gg-em-covered" } }).addTo(g);
    body.gaps.features.forEach(function (f) {
      L.geoJSON(f, { pane: "gg-highlight", interactive: false, style: { color: "#b2182b", weight: 2, dashArray: "4 3", fillColor: "#d6604d",
        fillOpacity: 0.45, className: "gg-em-gap" } }).addTo(g);
    });
  }
  function renderCoverageBoxes() {
    document.querySelectorAll(".gg-em-cov-box").forEach(function (box) {
      box.innerHTML = "";
      var c = em.coverage;
      if (!c) return;
      box.appendChild(G.table([G.t("field"), G.t("value")], [
        { cells: [G.t("emCovStations"), String(c.stations.length)], attrs: { "data-figure": "stations" } },
        { cells: [G.t("emCovArea"), G.fmtNumber(c.study_area_km2, 2) + " km²"] },
        { cells: [G.t("emCovCovered"), G.fmtNumber(c.covered_area_km2, 3) + " km²"], attrs: { "data-figure": "covered" } },
        { cells: [G.t("emCovGap"), G.fmtNumber(c.uncovered_area_km2, 3) + " km²"], attrs: { "data-figure": "uncovered", "data-value": String(c.uncovered_area_km2) } },
        { cells: [G.t("emCovPop"), G.fmtNumber(c.population_uncovered, 0) + " " + G.t("persons")], attrs: { "data-figure": "population", "data-value": String(c.population_uncovered) } }
      ], { class: "gg-table gg-kv gg-em-cov-table" }));
      box.appendChild(G.el("p", { class: "gg-hint", text: G.t("emCovRule", { t: c.turnout_s }) + " · " + G.t("emCovUpdated", { t: G.fmtDateTime(c.at) }) }));
    });
  }
  G.on("emergency:units", function () { if (em.coverageOn) refreshCoverage(); });

  /* ---------- service areas ---------- */
  function isoPanel() {
    var use = G.el("button", { class: "gg-btn", id: "gg-em-iso-incident", text: G.t("emUseIncident") });
    use.disabled = !em.selected;
    use.addEventListener("click", function () { var c = em.selected.point.coordinates; isochrones(L.latLng(c[1], c[0]), use); });
    var preset = G.el("select", { id: "gg-em-iso-minutes" }, ISO_PRESETS.map(function (p) {
      var o = G.el("option", { value: p, text: p.split(",").join(" / ") + " " + G.t("emMinutes") }); o.selected = (em.isoPreset || ISO_PRESETS[0]) === p; return o; }));
    preset.addEventListener("change", function () { em.isoPreset = preset.value; if (em.isoAt) isochrones(em.isoAt, preset); });
    G.showResults(G.t("emIsochrones"), G.el("div", { id: "gg-em-iso" }, [G.el("p", { class: "gg-hint", text: G.t("emIsoHint") }),
      G.el("div", { class: "gg-form" }, [G.el("label", { text: G.t("emMinutes") }), preset]), use, G.el("div", { id: "gg-em-iso-box" })]));
  }
  function isochrones(latlng, where) {
    var out = document.getElementById("gg-em-iso-box");
    var minutes = (em.isoPreset || ISO_PRESETS[0]).split(",").map(Number);
    em.isoAt = latlng;
    out.innerHTML = "";
    out.appendChild(G.el("p", { class: "gg-hint", text: G.t("loading") }));
    return call("/emergency/isochrones", { json: { point: { lon: latlng.lng, lat: latlng.lat }, minutes: minutes } }, where || out,
      G.t("emIsochrones")).then(function (fc) {
      em.isochrones = fc;
      var g = group("iso");
      g.clearLayers();
      fc.features.slice().reverse().forEach(function (f, k) {
        var m = f.properties.minutes, color = ISO_COLORS[fc.features.length - 1 - k] || "#888";
        L.geoJSON(f, { pane: "gg-highlight", interactive: false, style: { color: color, weight: 2, fillColor: color,
          fillOpacity: 0.22, className: "gg-em-iso gg-em-iso-" + m } }).addTo(g);
      });
      L.circleMarker(latlng, { pane: "gg-marker", radius: 6, color: "#fff", weight: 2, fillColor: "#1f3a5f", fillOpacity: 1 }).addTo(g);
      out.innerHTML = "";
      out.appendChild(G.table([G.t("emMinutes"), G.t("emArea"), G.t("emIsoReached")], fc.features.map(function (f, k) {
        var m = f.properties.minutes;
        return { cells: [G.el("span", {}, [G.el("span", { class: "gg-swatch gg-fill", style: "background:" + (ISO_COLORS[k] || "#888") }), m + " " + G.t("emMinutes")]),
          G.fmtNumber(f.properties.area_km2, 3) + " km²", f.properties.vertices_reached], attrs: { "data-minutes": String(m) } };
      }), { id: "gg-em-iso-table" }));
      var b = g.getBounds();
      if (b.isValid()) G.map.fitBounds(b, { padding: [20, 20] });
      return fc;
    }, function () { out.innerHTML = ""; return null; });
  }

  /* ---------- impact of an area ---------- */
  function impactPanel() {
    if (needIncident(G.t("emImpact"))) return;
    var inc = em.selected;
    var drawBtn = G.el("button", { class: "gg-btn", id: "gg-em-draw-area", text: G.t("emDrawArea") });
    drawBtn.addEventListener("click", function () {
      G.draw("polygon", { keep: false }).then(function (res) {
        var ring = res.latlngs.map(function (p) { return [p.lng, p.lat]; });
        ring.push(ring[0]);
        em.hazard = { incident: inc.id, geometry: { type: "Polygon", coordinates: [ring] } };
        impact(em.hazard.geometry, drawBtn);
      }).catch(function () {});
    });
    var stored = G.el("button", { class: "gg-btn", id: "gg-em-stored-area", text: G.t("emUseStored") });
    stored.addEventListener("click", function () { em.hazard = null; impact(null, stored); });
    G.showResults(G.t("emImpact"), G.el("div", { id: "gg-em-impact" }, [G.el("p", {}, [G.el("strong", { text: inc.code + " " + inc.incident_type })]),
      G.el("div", {}, [drawBtn, " ", stored]), G.el("div", { id: "gg-em-impact-box" })]));
    if (em.impact && em.impact.incident_id === inc.id) showImpact(em.impact);
  }
  function impact(geometry, where) {
    var inc = em.selected;
    return call("/emergency/incidents/" + inc.id + "/impact", { json: geometry ? { geometry: geometry } : {} }, where, G.t("emImpact")).then(function (body) {
      body.drawn = Boolean(geometry);
      em.impact = body;
      showImpact(body);
      return body;
    }).catch(function () { return null; });
  }
  function section(title, rows, columns, id) {
    var box = G.el("div", { "data-section": id }, [G.el("h4", { text: title })]);
    if (rows && rows.note) { box.appendChild(G.el("p", { class: "gg-hint", text: G.t("emNoAccess") })); return box; }
    if (!rows || !rows.length) { box.appendChild(G.el("p", { class: "gg-empty", text: G.t("noResult") })); return box; }
    box.appendChild(G.table(columns, rows.map(function (r) { return { cells: r }; })));
    return box;
  }
  function showImpact(body) {
    var out = document.getElementById("gg-em-impact-box");
    if (!out) return;
    out.innerHTML = "";
    var g = group("impact");
    g.clearLayers();
    L.geoJSON(body.area, { pane: "gg-highlight", interactive: false, style: { color: "#e31a1c", weight: 2.5, fillColor: "#fb9a99", fillOpacity: 0.25,
      className: "gg-em-impact-area" } }).addTo(g);
    var parcels = body.parcels || {};
    out.appendChild(G.table([G.t("field"), G.t("value")], [
      { cells: [G.t("emArea"), G.fmtNumber(body.area_km2, 4) + " km²"] },
      { cells: [G.t("emPopulation"), body.population === null ? G.t("emNoAccess") : G.fmtNumber(body.population, 0) + " " + G.t("persons")], attrs: { "data-figure": "population" } },
      { cells: [G.t("emParcels"), parcels.note ? G.t("emNoAccess") : String(parcels.count)], attrs: { "data-figure": "parcels" } },
      { cells: [G.t("emPipes"), body.pipes && body.pipes.note ? G.t("emNoAccess") : String((body.pipes || {}).count || 0)] }
    ], { class: "gg-table gg-kv", id: "gg-em-impact-summary" }));
    var critical = body.critical_facilities;
    out.appendChild(section(G.t("emCritical"), critical && critical.note ? critical : (critical || []).map(function (c) {
      return [c.kind === "hospital" ? "医院" : "学校", c.parcel_code, c.address || "", G.fmtArea(c.area_inside_m2)]; }),
      [G.t("emKind"), G.t("emCode"), G.t("emAddress"), G.t("emArea")], "critical"));
    out.appendChild(section(G.t("emHospitals"), (body.hospitals || []).map(function (h) { return [h.name, h.beds_available + " / " + h.beds_total]; }),
      [G.t("emName"), G.t("emFree")], "hospitals"));
    var utilities = body.pipes && body.pipes.by_utility;
    out.appendChild(section(G.t("emPipes"), body.pipes && body.pipes.note ? body.pipes : Object.keys(utilities || {}).map(function (u) {
      return [G.title((G.state.utilities || {})[u]) || u, utilities[u].pipes, G.fmtLength(utilities[u].length_m)]; }),
      [G.t("emUtility"), G.t("emPipeCount"), G.t("emLength")], "pipes"));
    out.appendChild(section(G.t("emSheltersInside"), (body.shelters_inside || []).map(function (s) { return [s.name, s.capacity_persons, s.occupancy]; }),
      [G.t("emShelter"), G.t("emCapacity"), G.t("emOccupancy")], "shelters"));
    if (body.drawn && G.allowed("em_impact_area") && em.hazard) {
      var save = G.el("button", { class: "gg-btn gg-primary", id: "gg-em-save-area", text: G.t("emSaveArea") });
      save.addEventListener("click", function () {
        save.disabled = true;
        call("/emergency/incidents/" + em.selected.id + "/areas/impact", { method: "PUT", json: { geometry: em.hazard.geometry } }, save, G.t("emSaveArea"))
          .then(function (r) { G.message(G.t("emSaved", { v: r.version })); redrawTiles(); }, function () { save.disabled = false; });
      });
      out.appendChild(save);
    }
    var b = g.getBounds();
    if (b.isValid()) G.map.fitBounds(b, { maxZoom: 17, padding: [30, 30] });
  }

  /* ---------- shelters: allocation as lines, evacuation routes ---------- */
  function sheltersPanel() {
    if (needIncident(G.t("emShelters"))) return;
    var inc = em.selected;
    var drawn = em.hazard && em.hazard.incident === inc.id;
    var run = G.el("button", { class: "gg-btn gg-primary", id: "gg-em-allocate", text: G.t("emAllocate") });
    run.addEventListener("click", function () { allocate(run); });
    G.showResults(G.t("emShelters"), G.el("div", { id: "gg-em-shelters" }, [G.el("p", {}, [G.el("strong", { text: inc.code + " " + inc.incident_type })]),
      G.el("p", { class: "gg-hint", text: G.t("emHazard", { h: drawn ? G.t("emHazardDrawn") : G.t("emHazardStored") }) }), run,
      G.el("div", { id: "gg-em-shelter-box" })]));
    if (em.allocation && em.allocation.incident_id === inc.id) showAllocation(em.allocation);
  }
  function allocate(button) {
    var inc = em.selected;
    var out = document.getElementById("gg-em-shelter-box");
    out.innerHTML = "";
    out.appendChild(G.el("p", { class: "gg-hint", text: G.t("emAllocating") }));
    var drawn = em.hazard && em.hazard.incident === inc.id;
    return call("/emergency/incidents/" + inc.id + "/shelter-allocation", { json: drawn ? { hazard: em.hazard.geometry } : {} }, button, G.t("emShelters"))
      .then(function (body) { em.allocation = body; showAllocation(body); return body; }, function () { out.innerHTML = ""; return null; });
  }
  function showAllocation(body) {
    var out = document.getElementById("gg-em-shelter-box");
    if (!out) return;
    out.innerHTML = "";
    var g = group("shelters");
    g.clearLayers();
    var hazard = em.hazard && em.hazard.incident === body.incident_id ? em.hazard.geometry :
      em.impact && em.impact.incident_id === body.incident_id && !em.impact.drawn ? em.impact.area : null;
    if (hazard) L.geoJSON(hazard, { pane: "gg-highlight", interactive: false, style: { color: "#e31a1c", weight: 2, dashArray: "6 4",
      fillColor: "#fb9a99", fillOpacity: 0.2, className: "gg-em-hazard" } }).addTo(g);
    var routes = L.featureGroup().addTo(g);
    var most = Math.max.apply(null, body.allocation.map(function (a) { return a.persons; }).concat([1]));
    body.allocation.forEach(function (a, k) {
      L.geoJSON(a.line, { pane: "gg-highlight", interactive: false, style: { color: "#1f78b4", weight: 1.5 + 5 * a.persons / most, opacity: 0.75,
        className: "gg-em-shelter-line" } }).addTo(g);
      var end = a.line.coordinates[a.line.coordinates.length - 1];
      if (k < 40) L.circleMarker([end[1], end[0]], { pane: "gg-marker", radius: 5, color: "#fff", weight: 1.5, fillColor: "#1a9850", fillOpacity: 1 }).addTo(g);
    });
    (body.unplaced_zones || []).forEach(function (z) {
      var c = z.point.coordinates;
      L.circleMarker([c[1], c[0]], { pane: "gg-marker", radius: 6, color: "#fff", weight: 1.5, fillColor: "#d7191c", fillOpacity: 1, className: "gg-em-unplaced" }).addTo(g);
    });
    function showRoute(a) {
      routes.clearLayers();
      if (!a.route) return;
      L.geoJSON(a.route, { pane: "gg-highlight", style: { color: "#ffffff", weight: 8, opacity: 0.85 } }).addTo(routes);
      L.geoJSON(a.route, { pane: "gg-highlight", style: { color: "#6a3d9a", weight: 4, className: "gg-em-evac-route" } }).addTo(routes);
      document.body.setAttribute("data-em-evac", String(a.shelter_id));
    }
    out.appendChild(G.el("p", { id: "gg-em-affected", "data-affected": String(body.affected_persons), "data-unplaced": String(body.unplaced_persons),
      text: G.t("emAffected", { a: G.fmtNumber(body.affected_persons, 0), p: G.fmtNumber(body.placed_persons, 0), u: G.fmtNumber(body.unplaced_persons, 0) }) }));
    out.appendChild(G.el("p", { class: "gg-hint", text: G.t("emEvacHint") }));
    out.appendChild(G.table([G.t("emShelter"), G.t("emPersons"), G.t("emMinutesCol"), G.t("emInHazard")], body.allocation.map(function (a) {
      return { cells: [a.shelter, G.fmtNumber(a.persons, 0), G.fmtNumber(a.minutes, 1) + " " + G.t("emMinutes"),
        a.metres_in_hazard !== undefined ? G.fmtLength(a.metres_in_hazard) : "—"],
        attrs: { "data-shelter-id": String(a.shelter_id), "data-persons": String(a.persons) }, onclick: function () { showRoute(a); } };
    }), { id: "gg-em-shelter-table" }));
    // the busiest flow's route is shown at once: the main evacuation route
    var first = body.allocation.slice().sort(function (a, b) { return b.persons - a.persons; })[0];
    if (first) showRoute(first);
    var b = g.getBounds();
    if (b.isValid()) G.map.fitBounds(b, { maxZoom: 17, padding: [30, 30] });
  }

  /* ---------- the tools ---------- */
  var POINT_LAYERS = ["emergency_incidents", "emergency_resources"];
  function leave(names) { return function () { G.draw.cancel(); names.forEach(clearGroup); }; }
  G.registerTool({
    id: "em_incidents", module: "emergency", title: { zh: "接警与事件", en: "Calls & incidents" },
    activate: function () { showLayers(POINT_LAYERS); incidentsPanel(); },
    onMapClick: function (e) { if (G.allowed("em_intake")) placeCall(e.latlng); },
    onLanguage: function () { if (G.state.activeTool === "em_incidents") incidentsPanel(); },
    deactivate: leave(["intake"])
  });
  G.registerTool({
    id: "em_dispatch", module: "emergency", title: { zh: "调派力量", en: "Dispatch" },
    activate: function () { showLayers(POINT_LAYERS); renderDispatch(); },
    onLanguage: function () { if (G.state.activeTool === "em_dispatch") renderDispatch(); },
    deactivate: leave(["dispatch"])
  });
  G.registerTool({
    id: "em_isochrones", module: "emergency", title: { zh: "等时圈", en: "Service areas" },
    activate: isoPanel,
    onMapClick: function (e) { isochrones(e.latlng); },
    deactivate: leave(["iso"])
  });
  G.registerTool({
    id: "em_coverage", module: "emergency", title: { zh: "消防覆盖", en: "Fire coverage" },
    activate: function () {
      showLayers(["emergency_resources"]);
      var box = G.el("div", { id: "gg-em-coverage" }, [coverageToggle()]);
      G.showResults(G.t("emCoverage"), box);
      if (em.coverageOn) renderCoverageBoxes(); else setCoverage(true);
    }
  });
  G.registerTool({
    id: "em_impact", module: "emergency", title: { zh: "影响评估", en: "Impact" },
    activate: impactPanel,
    deactivate: leave(["impact"])
  });
  G.registerTool({
    id: "em_shelters", module: "emergency", title: { zh: "避难安置", en: "Shelters" },
    activate: function () { showLayers(["emergency_shelters"]); sheltersPanel(); },
    deactivate: leave(["shelters"])
  });
  // the selected incident stays marked on the map whichever tool is active; a new key starts afresh
  G.on("layers:loaded", function () {
    if (!G.allowed("em_incidents")) { em.selected = null; clearGroup("selected"); }
    if (!G.allowed("em_coverage") && em.coverageOn) setCoverage(false);
  });
  G.emergency = { select: selectIncident, refreshCoverage: refreshCoverage, setCoverage: setCoverage };
})();
