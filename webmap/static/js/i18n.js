/* govgis web map — user-facing text, Simplified Chinese first, English available.
   Tools add their own strings with GovGis.addText({zh: {...}, en: {...}}). */
(function () {
  "use strict";
  var G = (window.GovGis = window.GovGis || {});
  G.text = {
    zh: {
      title: "城市地图", panel: "面板", search: "搜索", searchPlaceholder: "宗地代码、权利人、地址、管线/阀门/资源编号",
      keyButton: "部门密钥", keyLabel: "部门 API 密钥", save: "保存", clearKey: "退出",
      keyOn: "已使用部门密钥", keyOff: "匿名访问（仅公开图层）", keyRejected: "密钥无效或无权限",
      layers: "图层", tools: "工具", results: "结果", basemap: "底图", overlays: "专题图层",
      projected: "CGCS2000 投影", geographic: "CGCS2000 经纬度", minZoomHint: "放大到 {z} 级显示",
      loading: "加载中…", noResult: "无结果", error: "出错", close: "关闭", count: "共 {n} 条",
      module_common: "通用", module_land: "土地", module_planning: "规划", module_pipeline: "管线事故",
      module_emergency: "应急指挥", field: "字段", value: "值", zoomTo: "定位",
      offline: "离线地图（不访问互联网）", print: "打印",
      opacity: "不透明度", moveUp: "上移（画在上层）", moveDown: "下移（画在下层）", retry: "重试",
      hectare: "公顷", mu: "亩", yuan: "元", persons: "人", householdUnit: "户", yearsUnit: "年", yes: "是", no: "否",
      tilesWaiting: "地图瓦片（{n} 块）：", tilesFailed: "部分地图瓦片未能加载。", retrying: "服务器繁忙（{status}），{s} 秒后自动重试（第 {n} 次）…",
      problem_bad_request: "请求有误，请检查后重试", problem_configuration: "服务器配置有误，请联系系统管理员",
      problem_rate_limited: "请求过于频繁：本部门密钥每分钟的请求额度已用完，请稍候再试",
      problem_unauthorized: "需要部门密钥：请点击右上角“部门密钥”输入后再试",
      problem_forbidden: "您的部门密钥无权进行此操作",
      problem_not_found: "未找到所需的数据",
      problem_invalid_parameter: "输入有误，请检查后重试",
      problem_invalid_geometry: "图形无效，请检查红线或所画范围",
      problem_unknown_crs: "不支持该坐标系",
      problem_payload_too_large: "上传的数据太大",
      problem_conflict: "与现有数据冲突",
      problem_write_through_module: "此图层不能在这里直接修改，请使用相应的业务模块",
      problem_stale_version: "数据已被他人修改，请刷新后再改",
      problem_precondition_required: "请先读取最新版本再修改",
      problem_database_unavailable: "数据库暂时不可用，请稍后再试",
      problem_import_rejected: "导入被拒绝：文件中有错误的记录",
      problem_internal: "服务器内部错误（已记录），请联系系统管理员",
      problem_network: "无法连接服务器，请检查网络",
      problem_http_404: "未找到所需的数据", problem_http_405: "不支持此操作",
      problem_default: "请求失败（错误代码 {status}）",
      // 应急指挥: call lines, unit kinds and states, incident states (the emergency tools and popups)
      line_110: "110 公安", line_119: "119 消防", line_120: "120 急救", line_122: "122 交管", line_municipal: "市政热线",
      em_kind_vehicle: "车辆", em_kind_team: "队伍", em_kind_station: "站", em_kind_hospital: "医院", em_kind_medical: "医疗点",
      em_kind_equipment: "装备", em_method_network: "路网", em_method_straight_line: "直线估计（不在路网上）",
      em_status_reported: "已接报", em_status_dispatched: "已调派", em_status_on_scene: "已到场", em_status_under_control: "已控制",
      em_status_closed: "已结案", em_res_available: "可调派", em_res_assigned: "已出动", em_res_out_of_service: "停用",
      problem_em_conflict: "操作与当前状态冲突（可能已被他人调派或已结案），请刷新后再试",
      problem_em_no_place: "请先在地图上点击事件位置，再确认接警"
    },
    en: {
      title: "City map", panel: "Panel", search: "Search", searchPlaceholder: "Parcel code, right holder, address, pipe/valve/resource id",
      keyButton: "Department key", keyLabel: "Department API key", save: "Save", clearKey: "Sign out",
      keyOn: "Using a department key", keyOff: "Anonymous (public layers only)", keyRejected: "Key refused",
      layers: "Layers", tools: "Tools", results: "Results", basemap: "Basemap", overlays: "Overlays",
      projected: "CGCS2000 projected", geographic: "CGCS2000 lon/lat", minZoomHint: "visible from zoom {z}",
      loading: "Loading…", noResult: "No results", error: "Error", close: "Close", count: "{n} rows",
      module_common: "Common", module_land: "Land", module_planning: "Planning", module_pipeline: "Pipeline accident",
      module_emergency: "Emergency command", field: "Field", value: "Value", zoomTo: "Zoom to",
      offline: "Offline map (no internet)", print: "Print",
      opacity: "Opacity", moveUp: "Move up (draw on top)", moveDown: "Move down (draw below)", retry: "Retry",
      hectare: "ha", mu: "mu", yuan: "yuan", persons: "persons", householdUnit: "households", yearsUnit: "years", yes: "Yes", no: "No",
      tilesWaiting: "Map tiles ({n}): ", tilesFailed: "Some map tiles could not be loaded.", retrying: "Server busy ({status}); retrying in {s} s (attempt {n})…",
      problem_bad_request: "The request is not right; check it and try again", problem_configuration: "The server is misconfigured; contact the administrator",
      problem_rate_limited: "Too many requests: this department key has used its per-minute budget; please wait",
      problem_unauthorized: "A department key is needed: enter it under “Department key” (top right)",
      problem_forbidden: "Your department key may not do this",
      problem_not_found: "The data asked for was not found",
      problem_invalid_parameter: "Something in the input is wrong; check it and try again",
      problem_invalid_geometry: "The shape is not valid; check the red line or the drawn area",
      problem_unknown_crs: "This coordinate system is not supported",
      problem_payload_too_large: "The upload is too large",
      problem_conflict: "This conflicts with existing data",
      problem_write_through_module: "This layer is not edited here: use its module",
      problem_stale_version: "Someone changed this in the meantime; reload and edit again",
      problem_precondition_required: "Read the latest version before editing",
      problem_database_unavailable: "The database is not available right now; try again shortly",
      problem_import_rejected: "Import refused: the file has rows in error",
      problem_internal: "Internal server error (logged); contact the administrator",
      problem_network: "Cannot reach the server; check the network",
      problem_http_404: "The data asked for was not found", problem_http_405: "This operation is not supported",
      problem_default: "The request failed (code {status})",
      line_110: "110 Police", line_119: "119 Fire", line_120: "120 Ambulance", line_122: "122 Traffic", line_municipal: "Municipal hotline",
      em_kind_vehicle: "Vehicle", em_kind_team: "Team", em_kind_station: "Station", em_kind_hospital: "Hospital", em_kind_medical: "Medical post",
      em_kind_equipment: "Equipment", em_method_network: "road", em_method_straight_line: "straight line (off the network)",
      em_status_reported: "Reported", em_status_dispatched: "Dispatched", em_status_on_scene: "On scene", em_status_under_control: "Under control",
      em_status_closed: "Closed", em_res_available: "Available", em_res_assigned: "Assigned", em_res_out_of_service: "Out of service",
      problem_em_conflict: "This clashes with the current state (someone may have assigned the unit or closed the incident); reload and retry",
      problem_em_no_place: "Click the incident's place on the map first"
    }
  };
  G.addText = function (more) {
    Object.keys(more).forEach(function (lang) {
      Object.assign(G.text[lang] = G.text[lang] || {}, more[lang]);
    });
  };
  G.t = function (key, params) {
    var lang = G.lang || "zh";
    var s = (G.text[lang] && G.text[lang][key]) || (G.text.zh[key]) || key;
    if (params) Object.keys(params).forEach(function (k) { s = s.split("{" + k + "}").join(params[k]); });
    return s;
  };
})();
