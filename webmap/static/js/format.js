/* govgis web map — values as a person reads them: local time to the minute in the city's zone
   (GOVGIS_TIME_ZONE, passed in the page config), legal dates as dates, areas with m² and 公顷,
   lengths in m/km, codes as names. The same formats as gis/localtime.py on the server. */
(function () {
  "use strict";
  var G = (window.GovGis = window.GovGis || {});
  var partsFormat = null, partsZone = null;

  function zone() { return (G.config && G.config.timeZone) || "Asia/Shanghai"; }
  function parts(date) {
    if (!partsFormat || partsZone !== zone()) {
      partsZone = zone();
      partsFormat = new Intl.DateTimeFormat("en-US", { timeZone: partsZone, year: "numeric", month: "2-digit",
        day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    }
    var out = {};
    partsFormat.formatToParts(date).forEach(function (p) { out[p.type] = p.value; });
    return out;
  }
  function dayText(y, m, d) {
    return G.lang === "en" ? y + "-" + m + "-" + d : Number(y) + "年" + Number(m) + "月" + Number(d) + "日";
  }
  /* an ISO 8601 instant (with offset) → "2024年3月1日 10:22" in the city's zone */
  G.fmtDateTime = function (value) {
    if (value === null || value === undefined || value === "") return "";
    var date = value instanceof Date ? value : new Date(value);
    if (isNaN(date.getTime())) return String(value);
    var p = parts(date);
    return dayText(p.year, p.month, p.day) + " " + p.hour + ":" + p.minute;
  };
  /* a calendar date ("2024-03-01") as it is: never through Date, which would read it as UTC midnight */
  G.fmtDate = function (value) {
    if (value === null || value === undefined || value === "") return "";
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(value));
    if (m) return dayText(m[1], m[2], m[3]);
    return G.fmtLegalDate(value);
  };
  /* a legal instant kept as a timestamp (valid_from 2024-02-29T16:00Z) → its local calendar day (3月1日) */
  G.fmtLegalDate = function (value) {
    if (value === null || value === undefined || value === "") return "";
    if (/^\d{4}-\d{2}-\d{2}$/.test(String(value))) return G.fmtDate(value);
    var date = new Date(value);
    if (isNaN(date.getTime())) return String(value);
    var p = parts(date);
    return dayText(p.year, p.month, p.day);
  };
  /* today's date in the city (for <input type=date> defaults and the print footer) */
  G.localToday = function () {
    var p = parts(new Date());
    return p.year + "-" + p.month + "-" + p.day;
  };
  /* a datetime-local input value (the city's wall clock) → ISO 8601 with the city's offset */
  G.localInputToIso = function (value) {
    if (!value) return null;
    var guess = new Date(value + ":00Z");  // the wall time read as if UTC…
    var p = parts(guess);                    // …shown in the city's zone…
    var shown = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute);
    var offset = shown - guess.getTime();    // …differs by the zone's offset
    return new Date(guess.getTime() - offset).toISOString();
  };
  /* an instant → the city's wall clock as a datetime-local input value */
  G.isoToLocalInput = function (date) {
    var p = parts(date instanceof Date ? date : new Date(date));
    return p.year + "-" + p.month + "-" + p.day + "T" + p.hour + ":" + p.minute;
  };

  G.fmtNumber = function (n, digits) {
    return Number(n).toLocaleString(G.lang === "en" ? "en-US" : "zh-CN",
      { minimumFractionDigits: digits || 0, maximumFractionDigits: digits || 0 });
  };
  G.fmt = G.fmtNumber;
  /* 660.3845 → "660.38 m²（0.07 公顷）"; areas of a hectare and more lead with 公顷 */
  G.fmtArea = function (m2, withMu) {
    if (m2 === null || m2 === undefined || m2 === "") return "";
    var v = Number(m2), ha = v / 10000;
    var text = G.fmtNumber(v, 2) + " m²";
    var extra = [G.fmtNumber(ha, ha >= 100 ? 2 : 4) + " " + G.t("hectare")];
    if (withMu) extra.push(G.fmtNumber(v / (10000 / 15), 2) + " " + G.t("mu"));
    return text + (G.lang === "en" ? " (" + extra.join(", ") + ")" : "（" + extra.join("，") + "）");
  };
  /* metres → "850.25 m" or "12.345 km" */
  G.fmtLength = function (m) {
    if (m === null || m === undefined || m === "") return "";
    var v = Number(m);
    return Math.abs(v) >= 1000 ? G.fmtNumber(v / 1000, 3) + " km" : G.fmtNumber(v, 2) + " m";
  };

  /* one attribute of a feature as the popup shows it (def.fields[name] says how) */
  G.fmtValue = function (def, name, value, props) {
    var f = (def && def.fields && def.fields[name]) || {};
    if (value === null || value === undefined || value === "") return "—";
    if (f.values && f.values[String(value)]) return G.title(f.values[String(value)]);
    if (f.codes) {
      var list = (G.state.codes || {})[f.codes] || {};
      var hit = list[String(value)];
      if (hit) return value + " " + G.title(hit);
    }
    switch (f.display) {
      case "area": return G.fmtArea(value);
      case "length": return G.fmtNumber(value, 2) + " m";
      case "mm": return G.fmtNumber(value, 0) + " mm";
      case "money": return G.fmtNumber(value, 2) + " " + G.t("yuan");
      case "price": return G.fmtNumber(value, 2) + " " + G.t("yuan") + "/m²";
      case "speed": return G.fmtNumber(value, 0) + " km/h";
      case "seconds": return G.fmtNumber(value, 1) + " s";
      case "persons": return G.fmtNumber(value, 0) + " " + G.t("persons");
      case "households": return G.fmtNumber(value, 0) + " " + G.t("householdUnit");
      case "years": return value + " " + G.t("yearsUnit");
      case "year": return String(value);
      case "datetime": return G.fmtDateTime(value);
      case "date": return G.fmtDate(value);
      case "legal_date": return G.fmtLegalDate(value);
      case "bool": return value === true || value === "true" ? G.t("yes") : G.t("no");
      case "list": return Array.isArray(value) ? value.join("、") : String(value);
      case "network": {
        var n = (G.state.networks || {})[String(value)];
        if (!n) return String(value);
        var u = (G.state.utilities || {})[n.utility];
        return n.name + (u ? "（" + G.title(u) + "）" : "");
      }
      case "number": return typeof value === "number" ? G.fmtNumber(value, Number.isInteger(value) ? 0 : 2) : String(value);
      default:
        if (typeof value === "boolean") return value ? G.t("yes") : G.t("no");
        if (typeof value === "object") return JSON.stringify(value);
        return String(value);
    }
  };
})();
