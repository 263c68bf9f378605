"""The parcel dossier (宗地一站式档案): the constraints a buyer or a planner must know, read from the
sections the service gathered, and the printable page.

Pure: the service (layers/landuse/service.py ``parcel_dossier``) reads every section through the
families' public functions (already masked for the caller) and passes the record in.
"""

from __future__ import annotations

from typing import Any

from shapely.geometry.base import BaseGeometry

from gis.localtime import format_date, format_datetime, utc_offset_label
from layers.landuse.printing import (
    CASE_KINDS,
    CASE_STATUSES,
    CONTROL_KINDS,
    HOLDER_KINDS,
    LINEAGE_KINDS,
    PIPE_STATUSES,
    PRICE_CLASSES,
    REGISTRATION_KINDS,
    SUPPLY_KINDS,
    UTILITIES,
    ZONE_TYPES,
    Drawing,
    corners,
    document,
    draw_corners,
    esc,
    number,
    table,
    word,
)

OPEN_CASE = ("reported", "investigating", "penalised")


def constraints_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    """What limits the use or transfer of the parcel, each with a severity (``block``: may not be done
    without higher approval; ``condition``: may be done under a condition; ``info``), worst first."""
    out: list[dict[str, Any]] = []
    area = record["plane_area"]
    controls = record.get("control_lines", {})
    for c in controls.get("overlaps", []) if controls.get("available") else []:
        share = f"{c['area']:,.2f} m²（占宗地 {100 * c['area'] / area:.1f}%）"
        if c["kind"] == "permanent_basic_farmland":
            out.append({"kind": c["kind"], "severity": "block",
                        "text": f"压占永久基本农田 {share}：不得擅自占用，国家重点项目确需占用须报国务院批准"})
        elif c["kind"] == "ecological_red_line":
            core = c.get("zone_type") == "core"
            out.append({"kind": c["kind"], "severity": "block" if core else "condition",
                        "text": f"位于生态保护红线{'核心保护区' if core else '一般控制区'} {share}："
                                + ("原则上禁止人为活动" if core else "仅允许对生态功能不造成破坏的有限人为活动")})
        elif c["kind"] == "urban_development_boundary":
            outside = area - c["area"]
            if outside > 0.01:
                out.append({"kind": c["kind"], "severity": "condition",
                            "text": f"城镇开发边界外 {outside:,.2f} m²：边界外不得进行城镇集中建设"})
    if controls.get("available") and not any(c["kind"] == "urban_development_boundary"
                                             for c in controls.get("overlaps", [])):
        out.append({"kind": "urban_development_boundary", "severity": "condition",
                    "text": "宗地位于城镇开发边界以外：不得进行城镇集中建设"})
    cases = record.get("supervision", {})
    open_cases = [c for c in cases.get("cases", []) if c.get("status") in OPEN_CASE] if cases.get("available") else []
    if open_cases:
        out.append({"kind": "supervision", "severity": "block",
                    "text": f"存在未结土地监察案件 {len(open_cases)} 件（"
                            + "、".join(c["case_no"] for c in open_cases) + "）：结案前不宜办理交易"})
    pipes = record.get("pipelines", {})
    if pipes.get("available") and pipes.get("count"):
        out.append({"kind": "pipelines", "severity": "condition",
                    "text": f"地下管线 {pipes['count']} 条穿越宗地，长 {pipes['length_inside_m']:,.1f} m："
                            "建设须避让并满足 GB 50289 最小净距，迁改须经权属单位同意"})
    clear = record.get("clearances", {})
    if clear.get("available") and clear.get("violations"):
        out.append({"kind": "clearances", "severity": "info",
                    "text": f"宗地内现状管线间净距不足 {clear['violations']} 处（GB 50289）"})
    if record["parcel"].get("status") != "registered":
        out.append({"kind": "status", "severity": "condition", "text": f"宗地状态：{record['parcel'].get('status')}"})
    order = {"block": 0, "condition": 1, "info": 2}
    return sorted(out, key=lambda c: order[c["severity"]])


SEVERITY_WORDS = {"block": "限制", "condition": "条件", "info": "提示"}


def _section(title: str, section: dict[str, Any], body: str) -> str:
    if not section.get("available", True):
        return f"<h2>{esc(title)}</h2><p class='note'>{esc(section.get('note', '不可见'))}</p>"
    return f"<h2>{esc(title)}</h2>{body}"


def dossier_html(record: dict[str, Any], geometry: BaseGeometry, *, zone: str, bureau: str) -> str:
    """The printable dossier: the parcel with its boundary map and corner coordinates, then each
    section as a table with Chinese headings; dates and times in the city's local time."""
    p = record["parcel"]
    code = record["parcel_code"]
    offset = utc_offset_label(zone)

    def day(value: Any) -> str:
        return format_date(value, zone=zone) if value else "—"

    def moment(value: Any) -> str:
        return format_datetime(value, zone) if value else "—"

    summary = table(["项目", "内容"], [
        ["宗地代码", code], ["不动产单元代码", p.get("unit_code")], ["权利人", p.get("right_holder")],
        ["权利人类型", word(HOLDER_KINDS, p.get("holder_kind"))], ["证件号码", p.get("holder_id_number")],
        ["联系电话", p.get("holder_phone")], ["权利类型", p.get("right_type")],
        ["土地用途", f"{p.get('landuse_code')}（{p.get('landuse_system')}）"], ["坐落", p.get("address")],
        ["行政区代码", p.get("district")], ["登记面积 m²", number(p.get("registered_area"))],
        ["计算平面面积 m²", number(record["plane_area"])], ["现行版本", p.get("version")],
        ["生效日期", day(p.get("valid_from"))], ["登簿时间", moment(p.get("recorded_from"))]])
    drawing = Drawing(geometry.bounds, 520, max_height=420)
    drawing.shape(geometry, stroke="#c00", fill="#f4d9a6", width=2, opacity=0.5)
    points = corners(geometry)
    draw_corners(drawing, points)
    centre = geometry.representative_point()
    drawing.label(centre.x, centre.y, code[-5:], size=12)
    corner_rows = [[c["no"], f"{c['y']:,.3f}", f"{c['x']:,.3f}"] for c in points]
    constraints = record["constraints"]
    cons = table(["类别", "说明"], [[SEVERITY_WORDS[c["severity"]], c["text"]] for c in constraints])
    regs = table(["登记类型", "生效日期", "登簿时间", "证书号", "说明"], [
        [word(REGISTRATION_KINDS, r["kind"]), day(r["effective_at"]), moment(r["recorded_at"]),
         r.get("certificate_no"), r.get("note")] for r in record["registrations"]])
    lin = record["lineage"]
    lineage = table(["来源宗地", "派生宗地", "变化"], [[
        "、".join(lin["ancestors"]) or "无", "、".join(lin["descendants"]) or "无",
        "、".join(sorted({word(LINEAGE_KINDS, e["kind"]) for e in lin["edges"]})) or "无"]])
    lu = record["landuse"]
    landuse = (f"<p class='meta'>调查年度：{esc(str(lu.get('survey_year') or '无'))}。"
               f"{esc((lu.get('survey_coverage') or {}).get('note', ''))}</p>"
               + table(["地类编码", "地类名称", "三大类", "面积 m²", "占宗地 %"],
                       [[r["class_code"], r["class_name"], r["legal_group"], number(r["plane_area"]),
                         number(100 * r["share"], 1)] for r in lu["classes"]], numeric=(3, 4)))
    planning = table(["规划名称", "用地代码", "规划用地", "面积 m²", "占宗地 %"], [
        [z["plan_name"], z["class_code"], z["class_name"], number(z["area"]), number(100 * z["share"], 1)]
        for z in record["planning"]["zones"]], numeric=(3, 4))
    cl = record["control_lines"]
    controls = table(["控制线", "分区", "名称", "面积 m²", "占宗地 %"], [
        [word(CONTROL_KINDS, c["kind"]), word(ZONE_TYPES, c.get("zone_type") or ""), "、".join(c["names"]),
         number(c["area"]), number(100 * c["share"], 1)] for c in cl.get("overlaps", [])], numeric=(3, 4))
    lp = record["land_price"]
    prices = table(["用途", "级别", "基准地价 元/m²", "估价期日", "面积 m²"], [
        [word(PRICE_CLASSES, z["land_class"]), z["grade"], number(z["price_per_m2"]), day(z["base_date"]),
         number(z["area"])] for z in lp.get("zones", [])], numeric=(2, 4)) + table(
        ["用途", "面积 m²", "平均基准地价 元/m²", "总地价 元"], [
            [word(PRICE_CLASSES, u["land_class"]), number(u["area"]), number(u["mean_price_per_m2"]), number(u["value"])]
            for u in lp.get("by_use", [])], numeric=(1, 2, 3))
    ap = record["approvals"]
    approvals = table(["批准文号", "供地方式", "项目名称", "用地单位", "批准用途", "批准日期", "年限", "占用本宗地 m²"], [
        [a["approval_no"], word(SUPPLY_KINDS, a["supply_kind"]), a["project_name"], a["land_user"], a["landuse_code"],
         day(a["approved_on"]), a.get("term_years"), number(a["area_on_parcel"])] for a in ap.get("items", [])],
        numeric=(7,))
    sv = record["supervision"]
    cases = table(["案件编号", "类型", "状态", "发现日期", "当事人", "涉及本宗地 m²"], [
        [c["case_no"], word(CASE_KINDS, c["kind"]), word(CASE_STATUSES, c["status"]), day(c["found_on"]),
         c.get("party"), number(c["area_on_parcel"])] for c in sv.get("cases", [])], numeric=(5,))
    pp = record["pipelines"]
    pipes = table(["管线编号", "管线类型", "管径 mm", "材质", "状态", "宗地内长度 m"], [
        [x.get("code"), word(UTILITIES, x.get("utility")), x.get("diameter_mm"), x.get("material"),
         word(PIPE_STATUSES, x.get("status")), number(x["length_inside_m"])] for x in pp.get("pipes", [])],
        numeric=(2, 5))
    cr = record["clearances"]
    clearances = table(["管线", "相邻管线", "净距类型", "实测 m", "要求 m", "结论"], [
        [f"{word(UTILITIES, f['utility'])} {f['code']}", f"{word(UTILITIES, f['other_utility'])} {f['other_code']}",
         "水平" if f["kind"] == "horizontal" else "垂直", number(f["measured_m"]), number(f["required_m"]),
         {"violation": "不满足", "unknown": "缺埋深，无法判定"}.get(f["status"], "满足")]
        for f in cr.get("findings", [])], numeric=(3, 4))
    body = f"""<p class="meta">档案时点：{esc(moment(record['as_at']))}（{esc(offset)}，本地时间）· 坐标系 CGCS2000 3° 高斯-克吕格
（X 北坐标，Y 东坐标，单位 m）</p>
<h2>宗地基本信息</h2>{summary}
<h2>使用限制与提示</h2>{cons}
<h2>宗地图</h2><div class="figure">{drawing.svg('宗地图')}</div>
<h2>界址点坐标</h2>{table(['点号', 'X（北）m', 'Y（东）m'], corner_rows, numeric=(1, 2))}
<h2>登记记录</h2>{regs}
<h2>宗地谱系</h2>{lineage}
<h2>土地利用现状</h2>{landuse}
<h2>规划用途</h2>{planning}
{_section('三区三线控制线', cl, controls)}
{_section('基准地价', lp, prices)}
{_section('建设用地审批', ap, approvals)}
{_section('土地监察案件', sv, cases)}
{_section('穿越管线', pp, pipes)}
{_section('管线净距检查（GB 50289）', cr, clearances)}
<p class="note">本档案由 govgis 依据登记簿、调查与规划数据生成；个人信息按查询权限脱敏显示。</p>"""
    return document("宗地一站式档案", f"土地交易 · 宗地代码 {code}", body, bureau=bureau, zone=zone, number=code)
