/* Usage analysis (用量分析): draw an area → the network's customers in it, their billing consumption by
   category and by month, and the daily profile of the smart-meter sample with its peak hours (bars
   drawn as inline SVG: nothing is fetched but the API's answer). The network is chosen above the
   results; changing it asks again for the same area. */
(function () {
  "use strict";
  var G = window.GovGis;
  G.addText({
    zh: { usage: "用量分析", usageHint: "选择管网，在地图上画出范围（单击添加节点，双击结束），统计范围内用户的用量",
      usageFound: "{n} 户用户，抄表用量合计 {t} {u}", usageNone: "范围内没有该管网的用户", usageNetwork: "管网",
      usageCategory: "用户类别", usageCustomers: "户数", usageVolume: "用量", usageShare: "占比",
      usageMonthly: "逐月用量（季节特征）", usageDaily: "日内逐时用量（智能表抽样 {n} 户，{d} 天）", usagePeak: "用量高峰",
      usageNoHourly: "范围内没有智能表逐时数据",
      cat_residential: "居民", cat_commercial: "商业", cat_industrial: "工业", cat_hospital: "医院", cat_school: "学校",
      cat_government: "政府机关", cat_fire: "消防", cat_other: "其他" },
    en: { usage: "Usage analysis", usageHint: "Choose a network and draw an area on the map (click to add points, double-click to finish) to sum its customers' consumption",
      usageFound: "{n} customers, billed consumption {t} {u}", usageNone: "No customer of this network in the area", usageNetwork: "Network",
      usageCategory: "Category", usageCustomers: "Customers", usageVolume: "Consumption", usageShare: "Share",
      usageMonthly: "Consumption per month (seasonal pattern)", usageDaily: "Consumption per hour of the day (smart-meter sample of {n}, {d} days)",
      usagePeak: "Peak hours", usageNoHourly: "No hourly smart-meter reads in the area",
      cat_residential: "Residential", cat_commercial: "Commercial", cat_industrial: "Industrial", cat_hospital: "Hospital",
      cat_school: "School", cat_government: "Government", cat_fire: "Fire", cat_other: "Other" }
  });
  var kept = null, area = null, network = null;

  function clear() {
    if (kept) { G.map.removeLayer(kept); kept = null; }
  }
  function networks() {
    return Object.keys(G.state.networks || {}).map(function (id) { return { id: Number(id), name: G.state.networks[id].name }; });
  }
  function picker() {
    var select = G.el("select", { id: "gg-usage-network" }, networks().map(function (n) {
      var o = G.el("option", { value: String(n.id), text: n.name });
      if (n.id === network) o.selected = true;
      return o;
    }));
    select.addEventListener("change", function () { network = Number(select.value); if (area) ask(); });
    return G.el("label", { class: "gg-hint" }, [G.t("usageNetwork") + " ", select]);
  }
  /* bars as inline SVG: values → heights, labels under every bar */
  function bars(id, values, labels, highlight) {
    var w = 300, h = 110, pad = 14, n = values.length, max = Math.max.apply(null, values.concat([1e-9]));
    var bw = (w - 2) / n, parts = ['<svg xmlns="http://www.w3.org/2000/svg" id="' + id + '" viewBox="0 0 ' + w + " " + (h + pad) +
      '" width="100%" role="img">'];
    values.forEach(function (v, i) {
      var bh = (h - 4) * v / max;
      parts.push('<rect x="' + (1 + i * bw + 1).toFixed(1) + '" y="' + (h - bh).toFixed(1) + '" width="' + Math.max(bw - 2, 1).toFixed(1) +
        '" height="' + bh.toFixed(1) + '" fill="' + (highlight.indexOf(i) >= 0 ? "#d7191c" : "#2b83ba") + '" data-value="' + v + '"/>');
      if (n <= 12 || i % 3 === 0) {
        parts.push('<text x="' + (1 + i * bw + bw / 2).toFixed(1) + '" y="' + (h + pad - 2) + '" font-size="9" text-anchor="middle">' + labels[i] + "</text>");
      }
    });
    parts.push("</svg>");
    var box = G.el("div", { class: "gg-usage-chart" });
    box.innerHTML = parts.join("");
    return box;
  }
  function show(body) {
    G.state.lastUsage = body;
    var out = G.el("div", { id: "gg-usage" }, [picker()]);
    if (!body.customers) {
      out.appendChild(G.el("p", { class: "gg-empty", text: G.t("usageNone") }));
      G.showResults(G.t("usage"), out);
      return;
    }
    out.appendChild(G.el("h4", { id: "gg-usage-total", text: G.t("usageFound", { n: body.customers, t: G.fmtNumber(body.total, 1), u: body.unit }) }));
    out.appendChild(G.table([G.t("usageCategory"), G.t("usageCustomers"), G.t("usageVolume") + " " + body.unit, G.t("usageShare")],
      body.by_category.map(function (c) {
        return { cells: [G.t("cat_" + c.category), c.customers, G.fmtNumber(c.consumption, 1), G.fmtNumber(c.share * 100, 1) + "%"],
          attrs: { "data-category": c.category } };
      }), { id: "gg-usage-table" }));
    var season = body.seasonal_profile;
    out.appendChild(G.el("h5", { text: G.t("usageMonthly") }));
    out.appendChild(bars("gg-usage-months", season.months.map(function (m) { return m.consumption; }),
      season.months.map(function (m) { return String(m.month); }), season.peak_month ? [season.peak_month - 1] : []));
    var daily = body.daily_profile;
    if (daily.customers_metered) {
      out.appendChild(G.el("h5", { text: G.t("usageDaily", { n: daily.customers_metered, d: daily.days }) }));
      out.appendChild(bars("gg-usage-hours", daily.hours.map(function (x) { return x.mean_per_day; }),
        daily.hours.map(function (x) { return String(x.hour); }), daily.peak_hours));
      out.appendChild(G.el("p", { id: "gg-usage-peaks", text: G.t("usagePeak") + "：" + daily.peak_hours_text.join("，") }));
    } else {
      out.appendChild(G.el("p", { class: "gg-hint", text: G.t("usageNoHourly") }));
    }
    G.showResults(G.t("usage"), out);
  }
  function ask() {
    var box = G.el("div", {}, [picker(), G.el("p", { class: "gg-hint", text: G.t("loading") })]);
    G.showResults(G.t("usage"), box);
    return G.api("/pipeline/usage", { json: { network_id: network, geometry: area }, where: box, context: G.t("usage") })
      .then(show).catch(function () {});
  }
  function start() {
    clear();
    var all = networks();
    if (network === null && all.length) network = all[0].id;
    G.showResults(G.t("usage"), G.el("div", {}, [picker(), G.el("p", { class: "gg-hint", text: G.t("usageHint") })]));
    G.draw("polygon", { keep: true }).then(function (res) {
      kept = res.layer;
      var ring = res.latlngs.map(function (p) { return [p.lng, p.lat]; });
      ring.push(ring[0]);
      area = { type: "Polygon", coordinates: [ring] };
      G.state.lastUsageArea = area;
      return ask();
    }).catch(function () {});
  }
  G.registerTool({
    id: "usage", module: "pipeline", title: { zh: "用量分析", en: "Usage analysis" },
    activate: start,
    deactivate: function () { G.draw.cancel(); clear(); }
  });
})();
