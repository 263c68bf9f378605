/* Repair order (抢修单): from the isolation on the map, create the order and print it. Extends the
   burst-isolation panel through the "pipeline:isolation" event, so the isolation tool stays as is. */
(function () {
  "use strict";
  var G = window.GovGis;
  G.addText({
    zh: { repairOrder: "抢修单", createOrder: "生成抢修单", place: "地点", plannedRestore: "计划恢复供水", printOrder: "打印抢修单",
      orderCode: "单号", status: "状态", valves: "关闭阀门", conflicts: "阀门冲突", printNotice: "打印停供通知", notice: "停供通知" },
    en: { repairOrder: "Repair order", createOrder: "Create repair order", place: "Place", plannedRestore: "Planned restore", printOrder: "Print order",
      orderCode: "Order", status: "Status", valves: "Valves to close", conflicts: "Valve conflicts", printNotice: "Print notice", notice: "Notice" }
  });
  // the server renders every document (gis/documents.py); the page only shows and prints it
  G.printRepairOrder = function (order) {
    return G.api("/pipeline/repair-orders/" + order.id + "/print?" + G.qs({ lang: G.lang }), { where: "#gg-order-section", context: G.t("printOrder") }).then(function (html) {
      G.showDocument(G.t("repairOrder") + " " + order.code, html, "gg-order-frame");
    });
  };
  G.printStopNotice = function (order) {
    return G.api("/pipeline/repair-orders/" + order.id + "/notice?" + G.qs({ lang: G.lang }), { where: "#gg-order-section", context: G.t("printNotice") }).then(function (html) {
      G.showDocument(G.t("notice") + " " + order.code, html, "gg-notice-frame");
    });
  };
  function showOrder(box, order) {
    G.state.lastRepairOrder = order;
    var old = document.getElementById("gg-order");
    if (old) old.remove();
    var print = G.el("button", { class: "gg-btn", id: "gg-print-order", text: G.t("printOrder") });
    print.addEventListener("click", function () { G.printRepairOrder(order); });
    var notice = G.el("button", { class: "gg-btn", id: "gg-print-notice", text: G.t("printNotice") });
    notice.addEventListener("click", function () { G.printStopNotice(order); });
    box.appendChild(G.el("div", { id: "gg-order", "data-order-id": String(order.id) }, [
      G.table([G.t("field"), G.t("value")], [
        { cells: [G.t("orderCode"), order.code], attrs: { "data-order-code": order.code } },
        { cells: [G.t("status"), order.status_zh || order.status] },
        { cells: [G.t("valves"), (order.valve_ids || []).length] },
        { cells: [G.t("conflicts"), (order.conflicts || []).length] }]), print, " ", notice]));
  }
  G.on("pipeline:isolation", function (ev) {
    var result = ev.result, panel = ev.panel;
    if (!result.id || !G.allowed("repair_order")) return;  // a read-only key sees no 生成抢修单
    var place = G.el("input", { id: "gg-order-place", type: "text" });
    // a street a crew can find: the nearest named road to the burst (the server's default too)
    place.value = (result.burst && result.burst.street) || "";
    var restore = G.el("input", { id: "gg-order-restore", type: "datetime-local" });
    // the city's wall clock, whatever zone the browser is set to
    restore.value = G.isoToLocalInput(new Date(Date.now() + 6 * 3600 * 1000));
    var create = G.el("button", { class: "gg-btn", id: "gg-create-order", text: G.t("createOrder") });
    create.addEventListener("click", function () {
      G.message(G.t("loading"));
      G.api("/pipeline/repair-orders", { json: { isolation_id: result.id, place: place.value,
        planned_restore_at: G.localInputToIso(restore.value), language: G.lang }, where: create, context: G.t("createOrder") })
        .then(function (order) { G.message(""); showOrder(panel, order); return G.printRepairOrder(order); })
        .catch(function () {});
    });
    // right after the segment figures, above the (possibly long) customer list
    var section = G.el("div", { id: "gg-order-section" }, [G.el("h4", { text: G.t("repairOrder") }),
      G.el("div", { class: "gg-form" }, [G.el("label", { text: G.t("place") }), place,
        G.el("label", { text: G.t("plannedRestore") }), restore]), create]);
    var anchor = panel.querySelector("#gg-segment-table");
    if (anchor) panel.insertBefore(section, anchor.nextSibling); else panel.appendChild(section);
    panel = section;
  });
  G.registerTool({ id: "repair_order", module: "pipeline", button: false });
})();
