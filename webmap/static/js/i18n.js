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
      offline: "离线地图（不访问互联网）", print: "打印"
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
      offline: "Offline map (no internet)", print: "Print"
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
    if (params) Object.keys(params).forEach(function (k) { s = s.replace("{" + k + "}", params[k]); });
    return s;
  };
})();
