"""One way to print every document the service hands a person: the pre-review report, the balance
table, the repair order and the stop-supply notice.

A document is built from a few blocks (fields, tables, a figure, a signature block) and rendered to
one self-contained HTML page with an A4 print stylesheet: the bureau's name and the title in the page
header, 第 n 页 / 共 m 页 in the footer (CSS @page margin boxes, which Chromium's print to PDF
draws), headings kept with what follows them, tables in fixed layout that wrap inside the page.

Labels are Chinese; ``lang="en"`` adds the English after them (an official document stays Chinese).
Values are shown as a person reads them, never as the program holds them: booleans 是/否, None as —,
areas and money with thousands separators, times local to the minute and legal dates as dates
(gis.localtime). A caller passes words, not keys: code → name is the family's job, and ``word``
refuses nothing but makes a missing name visible as the code itself.

Knows no domain and no HTTP; every text is escaped here, so a block never carries raw HTML except
a figure (an SVG the caller drew).
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gis.localtime import format_date, format_datetime, utc_offset_label

LANGS = ("zh", "en")
KINDS = ("text", "int", "number", "area", "money", "percent", "bool", "date", "datetime")


def check_lang(lang: str) -> str:
    """The document language: zh (Chinese labels) or en (Chinese labels with English after them)."""
    if lang not in LANGS:
        from gis.errors import InvalidParameter

        raise InvalidParameter("lang is zh (中文) or en (中文 + English)")
    return lang


@dataclass(frozen=True)
class Column:
    """A table column: its Chinese (and English) heading, how its values are shown, its share of the
    page width (CSS, e.g. ``"18%"``; columns without one share the rest)."""

    zh: str
    en: str = ""
    kind: str = "text"
    width: str | None = None
    digits: int = 2

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column kind {self.kind!r}: one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class Row:
    """A table row with a style: ``group`` and ``total`` rows are bold, ``indent`` levels the first
    text cell."""

    cells: Sequence[Any]
    style: str = ""
    indent: int = 0


class Document:
    """A printable document under construction: add blocks in reading order, then ``html()``."""

    def __init__(self, *, title_zh: str, title_en: str, bureau: str, zone: str, lang: str = "zh",
                 subtitle: str | None = None, number: str | None = None,
                 generated_at: dt.datetime | str | None = None) -> None:
        self.lang = check_lang(lang)
        self.zone = zone
        self.bureau = bureau
        self.title_zh, self.title_en = title_zh, title_en
        self.subtitle = subtitle
        self.number = number
        if isinstance(generated_at, str):  # a stored report keeps ISO 8601 with its offset
            generated_at = dt.datetime.fromisoformat(generated_at.replace("Z", "+00:00"))
        self.generated_at = generated_at or dt.datetime.now(dt.UTC)
        self._blocks: list[str] = []
        self._css: list[str] = []  # rules of block() parts

    # --- words and values -------------------------------------------------------------------------

    def label(self, zh: str, en: str = "") -> str:
        """A label as this document shows it (escaped): Chinese, with the English after it in ``en``."""
        return html.escape(f"{zh} {en}" if self.lang == "en" and en else zh)

    def word(self, names: Mapping[str, tuple[str, str] | str], key: Any) -> str:
        """A code's name from ``names`` (code → (zh, en) or zh) — the code itself only when it has none."""
        name = names.get(key) if key is not None else None
        if name is None:
            return "—" if key is None else str(key)
        if isinstance(name, str):
            return name
        return f"{name[0]} {name[1]}" if self.lang == "en" and name[1] else name[0]

    def text(self, value: Any, kind: str = "text", digits: int = 2) -> str:
        """A value as a person reads it (not escaped)."""
        if value is None or value == "":
            return "—"
        if kind == "bool" or isinstance(value, bool):
            yes, no = ("是 Yes", "否 No") if self.lang == "en" else ("是", "否")
            return yes if value else no
        if kind == "datetime":
            return format_datetime(value, self.zone, "zh")
        if kind == "date":
            return format_date(value, "zh", zone=self.zone)
        if kind == "int":
            return f"{int(round(float(value))):,}"
        if kind in ("number", "area", "money"):
            return f"{float(value):,.{digits}f}"
        if kind == "percent":
            return f"{100 * float(value):.{digits}f}%"
        if isinstance(value, float):
            return f"{value:,.{digits}f}"
        if isinstance(value, dt.datetime):
            return format_datetime(value, self.zone, "zh")
        if isinstance(value, dt.date):
            return format_date(value, "zh")
        return str(value)

    # --- blocks -----------------------------------------------------------------------------------

    def heading(self, zh: str, en: str = "") -> Document:
        self._blocks.append(f"<h2>{self.label(zh, en)}</h2>")
        return self

    def paragraph(self, text: str, css: str = "") -> Document:
        cls = f' class="{html.escape(css)}"' if css else ""
        self._blocks.append(f"<p{cls}>{html.escape(text)}</p>")
        return self

    def notice(self, text: str) -> Document:
        """A framed text kept as written (line breaks included): a notice to post."""
        self._blocks.append(f'<div class="notice">{html.escape(text)}</div>')
        return self

    def fields(self, rows: Iterable[tuple[str, str, Any] | tuple[str, str, Any, str]], columns: int = 2) -> Document:
        """Label/value pairs, ``columns`` pairs to a line: (zh, en, value[, kind])."""
        cells = []
        for row in rows:
            zh, en, value, *kind = row
            cells.append(f'<th>{self.label(zh, en)}</th><td>{html.escape(self.text(value, *kind))}</td>')
        lines = ["<tr>" + "".join(cells[i:i + columns]) + "</tr>" for i in range(0, len(cells), columns)]
        widths = "".join('<col class="k"><col>' for _ in range(columns))
        self._blocks.append(f'<table class="fields"><colgroup>{widths}</colgroup>{"".join(lines)}</table>')
        return self

    def table(self, columns: Sequence[Column], rows: Iterable[Row | Sequence[Any]], *, css: str = "",
              empty: tuple[str, str] = ("无", "none")) -> Document:
        """A table that fits the page: fixed layout, widths from the columns, long words wrapped, the
        heading row repeated on every page."""
        rows = [r if isinstance(r, Row) else Row(r) for r in rows]
        if not rows:
            self._blocks.append(f'<p class="empty">{self.label(*empty)}</p>')
            return self
        cols = "".join(f'<col style="width:{html.escape(c.width)}">' if c.width else "<col>" for c in columns)
        head = "".join(f'<th class="{c.kind}">{self.label(c.zh, c.en)}</th>' for c in columns)
        body = []
        for row in rows:
            tds = []
            for i, (column, value) in enumerate(zip(columns, row.cells, strict=True)):
                shown = html.escape(self.text(value, column.kind, column.digits))
                pad = f' style="padding-left:{1 + 1.2 * row.indent:.1f}em"' if row.indent and i == 1 else ""
                tds.append(f'<td class="{column.kind}"{pad}>{shown}</td>')
            style = f' class="{html.escape(row.style)}"' if row.style else ""
            body.append(f"<tr{style}>{''.join(tds)}</tr>")
        cls = f"data {css}".strip()
        self._blocks.append(f'<table class="{html.escape(cls)}"><colgroup>{cols}</colgroup><thead><tr>{head}'
                            f'</tr></thead><tbody>{"".join(body)}</tbody></table>')
        return self

    def figure(self, svg: str, caption: str = "") -> Document:
        """A drawing (inline SVG made by the caller) with an optional caption, kept on one page."""
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._blocks.append(f'<figure>{svg}{cap}</figure>')
        return self

    def block(self, fragment: str, css: str = "") -> Document:
        """A part its builder has already written as HTML (every value in it escaped by that builder),
        with the few style rules only it uses (``css``): documents whose layout the blocks above do not
        cover (the land family's dossier, red-line and case maps) still get this page, header and
        page numbers."""
        self._blocks.append(fragment)
        if css:
            self._css.append(css)
        return self

    def checklist(self, items: Iterable[str]) -> Document:
        lis = "".join(f"<li>☐ {html.escape(item)}</li>" for item in items)
        self._blocks.append(f'<ol class="checklist">{lis}</ol>')
        return self

    def signatures(self, boxes: Sequence[tuple[str, str]], *, opinion: tuple[str, str] | None = None) -> Document:
        """The block a person signs: an opinion box (when given) and one line per signature, each with
        its 日期; kept on one page."""
        parts = []
        if opinion is not None:
            parts.append(f'<div class="opinion"><b>{self.label(*opinion)}：</b></div>')
        date_word = self.label("日期", "Date")
        for zh, en in boxes:
            parts.append(f'<div class="sign"><span>{self.label(zh, en)}：</span><span class="line"></span>'
                         f'<span>{date_word}：</span><span class="line short">　　年　　月　　日</span></div>')
        self._blocks.append(f'<div class="signatures">{"".join(parts)}</div>')
        return self

    # --- the page -----------------------------------------------------------------------------------

    def html(self) -> str:
        """The whole document: one HTML page, no scripts, nothing loaded from elsewhere."""
        title = self.title_zh + (f" {self.title_en}" if self.lang == "en" else "")
        page_words = ('"第 " counter(page) " 页 / 共 " counter(pages) " 页"' if self.lang == "zh" else
                      '"第 " counter(page) " 页 / 共 " counter(pages) " 页 · Page " counter(page) " of " counter(pages)')
        generated = (f'{self.label("生成时间", "Generated")}：{html.escape(self.text(self.generated_at, "datetime"))}'
                     f'（{html.escape(utc_offset_label(self.zone, self.generated_at))}）')
        number = (f'<span>{self.label("编号", "No.")}：{html.escape(self.number)}</span>' if self.number else "")
        subtitle = f'<p class="subtitle">{html.escape(self.subtitle)}</p>' if self.subtitle else ""
        return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>{_stylesheet(_css_string(self.bureau), _css_string(self.title_zh), page_words)}{''.join(self._css)}</style></head>
<body><header class="doc-head"><div class="bureau">{html.escape(self.bureau)}</div>
<h1>{html.escape(title)}</h1>{subtitle}<div class="meta">{number}<span>{generated}</span></div></header>
<main>{''.join(self._blocks)}</main></body></html>"""


def _css_string(text: str) -> str:
    """Text as a CSS string literal (for the page header's margin boxes)."""
    # < and > as CSS escapes: a name must not close the <style> element it sits in
    return '"' + (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
                  .replace("<", "\\3c ").replace(">", "\\3e ")) + '"'


def _stylesheet(bureau: str, title: str, page_words: str) -> str:
    return f"""
@page {{ size: A4 portrait; margin: 20mm 15mm 18mm 15mm;
  @top-left {{ content: {bureau}; font-size: 8.5pt; color: #333; }}
  @top-right {{ content: {title}; font-size: 8.5pt; color: #333; }}
  @bottom-center {{ content: {page_words}; font-size: 8.5pt; }} }}
html {{ font-family: "Noto Sans CJK SC", "Noto Sans SC", "Noto Serif CJK SC", sans-serif; font-size: 10pt;
  color: #000; -webkit-print-color-adjust: exact; print-color-adjust: exact; }}
body {{ margin: 0 auto; max-width: 180mm; padding: 8mm 0; }}
@media print {{ body {{ padding: 0; max-width: none; }} }}
.doc-head {{ border-bottom: 2px solid #000; margin-bottom: 4mm; padding-bottom: 2mm; }}
.bureau {{ font-size: 12pt; letter-spacing: .1em; }}
h1 {{ font-size: 17pt; margin: 2mm 0; }} .subtitle {{ margin: 0 0 1mm; font-size: 11pt; }}
.meta {{ display: flex; justify-content: space-between; font-size: 9pt; color: #333; }}
h2 {{ font-size: 12.5pt; margin: 6mm 0 2mm; border-left: 4px solid #333; padding-left: 2mm;
  break-after: avoid; page-break-after: avoid; }}
h2 + * {{ break-before: avoid; page-break-before: avoid; }}
table {{ width: 100%; table-layout: fixed; border-collapse: collapse; margin: 0 0 3mm; }}
th, td {{ border: 1px solid #555; padding: 1.2mm 1.6mm; vertical-align: top; text-align: left;
  overflow-wrap: anywhere; word-break: break-word; }}
th {{ background: #eee; font-weight: bold; }}
thead {{ display: table-header-group; }} tr {{ break-inside: avoid; page-break-inside: avoid; }}
td.int, td.number, td.area, td.money, td.percent {{ text-align: right; font-variant-numeric: tabular-nums;
  white-space: nowrap; }}
table.fields col.k {{ width: 17%; }} table.fields th {{ width: 17%; }}
tr.group td, tr.total td {{ font-weight: bold; background: #f4f4f4; }}
tr.bad td {{ color: #a00; }}
figure {{ margin: 0 0 3mm; break-inside: avoid; page-break-inside: avoid; text-align: center; }}
figure svg {{ max-width: 100%; height: auto; }}
figcaption {{ font-size: 8.5pt; color: #333; text-align: left; }}
.notice {{ white-space: pre-wrap; border: 2px solid #000; padding: 4mm; font-size: 11pt; line-height: 1.7;
  break-inside: avoid; }}
.verdict {{ font-size: 13pt; font-weight: bold; }} .pass {{ color: #1a7f37; }} .conditional {{ color: #b35c00; }}
.approval, .refused, .bad {{ color: #b00; }} .empty {{ color: #555; }}
.checklist {{ list-style: none; padding-left: 0; }} .checklist li {{ margin: 1mm 0; break-inside: avoid; }}
.signatures {{ break-inside: avoid; page-break-inside: avoid; margin-top: 6mm; border: 1px solid #555; padding: 3mm; }}
.opinion {{ min-height: 32mm; border-bottom: 1px solid #999; margin-bottom: 3mm; }}
.sign {{ display: flex; gap: 2mm; align-items: baseline; margin: 5mm 0 2mm; }}
.sign .line {{ flex: 1; border-bottom: 1px solid #000; min-height: 5mm; }} .sign .short {{ flex: .8; }}
"""

