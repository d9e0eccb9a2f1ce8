"""A small report document model rendered to Markdown and to self-contained HTML.

A :class:`Document` is an ordered list of blocks (headings, paragraphs, tables, figures, code).
Markdown links figures by relative path; HTML embeds them as base64 PNG so the file stands alone
(no external ``src``). Rendering is deterministic: equal documents give equal bytes.
"""

from __future__ import annotations

import base64
import html
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from satasim_atsn.fileio import atomic_write_text


@dataclass
class Table:
    """A table: header cells and rows of already formatted cells."""

    headers: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Figure:
    """A PNG figure, path relative to the report directory."""

    path: str
    caption: str


@dataclass
class Document:
    """An ordered list of report blocks."""

    title: str
    blocks: list[tuple[str, object]] = field(default_factory=list)
    notice: str = ""  # rendered as the very first line (e.g. "Statistical workload: ...")

    @staticmethod
    def figures_in(out: Path) -> set[str]:
        """The plots the report.md in ``out`` shows (none if there is none): what an earlier report wrote there."""
        try:
            text = (Path(out) / "report.md").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return set()
        return set(re.findall(r"^!\[.*\]\(([^()/\\\s]+\.png)\)$", text, flags=re.MULTILINE))

    def heading(self, text: str, level: int = 2) -> None:
        """Add a section heading (level 2 = section, 3 = subsection)."""
        self.blocks.append(("heading", (level, text)))

    def para(self, text: str) -> None:
        """Add a paragraph (Markdown inline syntax allowed: **bold**, `code`)."""
        self.blocks.append(("para", text))

    def bullets(self, items: list[str]) -> None:
        """Add a bulleted list."""
        self.blocks.append(("bullets", list(items)))

    def code(self, text: str) -> None:
        """Add a preformatted block (commands)."""
        self.blocks.append(("code", text))

    def table(self, headers: list[str], rows: list[list], caption: str = "") -> None:
        """Add a table; cells are converted with str()."""
        self.blocks.append(("table", Table([str(h) for h in headers], [[str(c) for c in r] for r in rows], caption)))

    def figure(self, path: str, caption: str) -> None:
        """Add a figure (PNG path relative to the report directory)."""
        self.blocks.append(("figure", Figure(path, caption)))

    # ------------------------------------------------------------------ rendering
    def to_markdown(self) -> str:
        """The document as GitHub-flavoured Markdown."""
        out = ([f"**{self.notice}**", ""] if self.notice else []) + [f"# {self.title}", ""]
        for kind, value in self.blocks:
            if kind == "heading":
                level, text = value
                out += ["#" * level + " " + text, ""]
            elif kind == "para":
                out += [str(value), ""]
            elif kind == "bullets":
                out += [line for item in value for line in _md_bullet(str(item))] + [""]
            elif kind == "code":
                out += ["```", str(value), "```", ""]
            elif kind == "table":
                out += _md_table(value) + [""]
            elif kind == "figure":
                out += [f"![{value.caption}]({value.path})", "", f"*{value.caption}*", ""]
        return "\n".join(out).rstrip() + "\n"

    def to_html(self, base_dir: str | Path) -> str:
        """The document as one self-contained HTML page (figures embedded as base64 PNG)."""
        base = Path(base_dir)
        body = [f"<p><b>{_inline(self.notice)}</b></p>"] if self.notice else []
        body.append(f"<h1>{_inline(self.title)}</h1>")
        for kind, value in self.blocks:
            if kind == "heading":
                level, text = value
                body.append(f"<h{level}>{_inline(text)}</h{level}>")
            elif kind == "para":
                body.append(f"<p>{_inline(str(value))}</p>")
            elif kind == "bullets":
                body.append("<ul>" + "".join(f"<li>{'<br>'.join(_inline(line) for line in _lines(str(i)))}</li>"
                                             for i in value) + "</ul>")
            elif kind == "code":
                body.append(f"<pre>{html.escape(str(value))}</pre>")
            elif kind == "table":
                body.append(_html_table(value))
            elif kind == "figure":
                data = base64.b64encode((base / value.path).read_bytes()).decode("ascii")
                body.append(
                    f'<figure><img alt="{html.escape(_plain(value.caption))}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{_inline(value.caption)}</figcaption></figure>"
                )
        return (
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(_plain(self.title))}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body)
            + "\n</body></html>\n"
        )

    def write(self, out_dir: str | Path, stem: str = "report") -> tuple[Path, Path]:
        """Write ``report.md`` and ``report.html`` atomically into out_dir."""
        out = Path(out_dir)
        md_path, html_path = out / f"{stem}.md", out / f"{stem}.html"
        atomic_write_text(md_path, self.to_markdown())
        atomic_write_text(html_path, self.to_html(out))
        return md_path, html_path


_CSS = (
    "body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:.25em .6em;text-align:right}"
    "th{background:#eee}td:first-child,th:first-child{text-align:left}"
    "img{max-width:100%}figcaption{font-style:italic;font-size:.9em}"
    "pre{background:#f4f4f4;padding:.6em;overflow-x:auto}code{background:#f4f4f4}"
)


#: what :func:`md_text` escapes anywhere: emphasis, code, links and strikethrough; ``<`` only where it opens an HTML
#: tag or an autolink and ``&`` only where it spells an entity (``<= 12`` stays as written); ``_`` only where it can
#: open or close emphasis (not inside a word: ``bandwidth_GB_per_s`` stays); ``|`` is the tables' own (_md_cell)
_MD_INLINE = re.compile(r"[\\`*\[\]~]|<(?=[A-Za-z/!?])|&(?=#?\w+;)|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
#: what starts a heading, a quote, a list or a rule at the start of a paragraph
_MD_BLOCK_START = re.compile(r"^(#|>|[-+*=](?=\s|$)|\d+(?=[.)](?:\s|$)))")
#: a backslash escape of an ASCII punctuation character, or a code span, whichever comes first (as Markdown reads
#: them: no escapes inside code)
_MD_ESCAPE_OR_CODE = re.compile(r"\\([!-/:-@\[-`{-~])|`([^`]+)`")


def md_text(value: object) -> str:
    """A user's text (a name, a label, a value, a description) for a Markdown block: the characters Markdown would
    read as formatting are escaped with a backslash, so ``*x*`` shows as written, not in italics; lines are joined."""
    text = " ".join(str(value).split("\n"))
    text = _MD_INLINE.sub(lambda m: "\\" + m.group(), text)
    return _MD_BLOCK_START.sub(lambda m: m.group() + "\\" if m.group()[0].isdigit() else "\\" + m.group(), text)


def md_code(value: object) -> str:
    """A user's text as inline code (`name`), or as escaped text (:func:`md_text`) when it holds a backtick or a line
    break, which a code span cannot show."""
    text = str(value)
    return md_text(text) if "`" in text or "\n" in text or not text.strip() else f"`{text}`"


def _plain(text: str) -> str:
    """Markdown text with its backslash escapes undone (an HTML title or alt text shows no formatting)."""
    return _MD_ESCAPE_OR_CODE.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), text)


def _inline(text: str) -> str:
    """Escape text and turn Markdown **bold**, `code` and [links](href) into HTML; a backslash-escaped character
    outside code stays as written (Markdown reads escapes everywhere but in code spans)."""
    held: list[str] = []  # finished HTML, put back at the end

    def hold(piece: str) -> str:
        held.append(piece)
        return f"\ue000{len(held) - 1}\ue001"

    text = _MD_ESCAPE_OR_CODE.sub(lambda m: hold(html.escape(m.group(1)) if m.group(1) is not None else
                                                 f"<code>{html.escape(m.group(2))}</code>"), text)
    escaped = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", html.escape(text))
    escaped = _MD_LINK.sub(lambda m: f'<a href="{_html_href(m.group(2))}">{m.group(1)}</a>', escaped)
    return re.sub("\ue000(\\d+)\ue001", lambda m: held[int(m.group(1))], escaped)


#: a Markdown link ``[text](href)`` (escaped brackets are held apart before this is read)
_MD_LINK = re.compile(r"\[([^\[\]]+)\]\(([^()\s]+)\)")


def _html_href(href: str) -> str:
    """A link's target in the HTML page: a sibling report's ``report.md`` is read as its ``report.html`` (every
    report directory holds both, and a reader of the HTML page stays in HTML)."""
    return href[:-len(".md")] + ".html" if href.endswith("report.md") and "://" not in href else href


def sub_report_links(text: str, directory: Path) -> str:
    """``see table3/`` in a report's text as a link to ``table3/report.md`` when ``directory`` holds that report
    (plain text where it does not, so a link never points at nothing)."""
    def link(m: re.Match) -> str:
        name = m.group(2)
        return f"{m.group(1)}[{name}/]({name}/report.md)" if (directory / name / "report.md").is_file() else m.group()
    return re.sub(r"(\bsee )([A-Za-z0-9][A-Za-z0-9_.-]*)/(?![A-Za-z0-9_])", link, text)


def _lines(text: str) -> list[str]:
    """The non-blank lines of a list item (an error message may span several)."""
    return [line.rstrip() for line in text.splitlines() if line.strip()] or [""]


def _md_bullet(text: str) -> list[str]:
    """A list item as Markdown lines: its later lines indented under the first, so the list does not break."""
    first, *rest = _lines(text)
    return [f"- {first}"] + [f"  {line}" for line in rest]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> list[str]:
    lines = []
    if table.caption:
        lines += [f"**{table.caption}**", ""]
    lines.append("| " + " | ".join(_md_cell(h) for h in table.headers) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(table.headers) - 1)) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    return lines


def _html_table(table: Table) -> str:
    parts = ["<table>"]
    if table.caption:
        parts.append(f"<caption>{_inline(table.caption)}</caption>")
    parts.append("<tr>" + "".join(f"<th>{_inline(h)}</th>" for h in table.headers) + "</tr>")
    for row in table.rows:
        parts.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>")
    parts.append("</table>")
    return "".join(parts)


def text_columns(text: str) -> int:
    """The terminal columns a text takes: a wide (CJK) or full-width character takes two, a combining mark none."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def text_table(headers: list[str], rows: list[list]) -> str:
    """A plain fixed-width table for the terminal (aligned by columns on screen, so CJK names keep it straight)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(text_columns(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for index, row in enumerate(cells):
        parts = [row[0] + " " * (widths[0] - text_columns(row[0]))]
        parts += [" " * (w - text_columns(c)) + c for c, w in zip(row[1:], widths[1:], strict=False)]
        lines.append("  ".join(parts))
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt(value: float | int | None, digits: int = 4) -> str:
    """Format a number with ``digits`` significant digits (None -> 'n/a')."""
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    if value != value:  # NaN
        return "n/a"
    if value == 0:
        return "0"
    magnitude = abs(value)
    text = f"{value:.{digits}g}"
    if magnitude >= 10 ** digits or magnitude < 1e-3 or "e" in text:  # 9999.5 rounds up: '1e+04' became '1.000e+04'
        return f"{value:.{digits - 1}e}"
    return text


def ratio_text(ratio: float, decimals: int = 3) -> str:
    """A ratio as ``1.234x``: ``decimals`` decimals, or as many significant digits below 0.1 (0.0000105 read
    0.000x, as if the two numbers had nothing to do with each other)."""
    if ratio != 0 and abs(ratio) < 0.1:
        return f"{ratio:.{decimals}g}x"
    return f"{ratio:.{decimals}f}x"


def pct(value: float | None, digits: int = 1) -> str:
    """Format a fraction as a signed percentage."""
    if value is None or value != value:
        return "n/a"
    return f"{value * 100:+.{digits}f}%"
