"""Manual pages as plain text: an out-of-domain corpus (``manpages:de``).

Debian's ``manpages-<lang>`` packages ship translated manual pages as gzipped roff under
``usr/share/man/<lang>/man<N>/*.<N>.gz``. They are technical German (or French, ...) text
from outside LibreOffice: the check that healing on LibreOffice help did not just learn its
domain. A page's id is its path below the language folder (``man1/ls.1``), so the split is
stable; ``.so`` pages (aliases of another page) are skipped.

The roff is reduced to what a reader sees: requests that only lay out the page (``.PP``,
``.RS``, ``.sp``, macro definitions, conditionals) are dropped, macros that carry text
(``.SH``, ``.B``, ``.IR``, mdoc's ``.Nm``/``.Fl``...) keep their arguments, escapes become
their characters (``\\-`` -> ``-``, ``\\(lq`` -> ``“``, ``\\[u00E4]`` -> ``ä``) and font changes vanish.

>>> roff_to_text('.SH BEZEICHNUNG\\nls \\\\- Verzeichnisinhalte \\\\fBauflisten\\\\fP')
'BEZEICHNUNG\\nls - Verzeichnisinhalte auflisten'
"""
from __future__ import annotations

import gzip
import logging
import re
from pathlib import Path

from tokengraft.assets.corpus import Document

logger = logging.getLogger(__name__)

# Named characters: \(xx and \[xx]. Unknown names are dropped.
_CHARS = {
    "lq": "“", "rq": "”", "Bq": "„", "oq": "‘", "cq": "’", "aq": "'", "dq": '"', "Fo": "«", "Fc": "»",
    "fo": "‹", "fc": "›", "em": "—", "en": "–", "hy": "-", "mi": "−", "bu": "•", "co": "©", "rg": "®",
    "tm": "™", "de": "°", "mu": "×", "di": "÷", "pl": "+", "eq": "=", "sc": "§", "ha": "^", "ti": "~",
    "rs": "\\", "sl": "/", "ba": "|", "or": "|", "at": "@", "sh": "#", "Do": "$", "ct": "¢", "Eu": "€",
    "<=": "≤", ">=": "≥", "!=": "≠", "->": "→", "<-": "←", "ua": "↑", "da": "↓", "lA": "⇐", "rA": "⇒",
    "+-": "±", "aa": "´", "ga": "`", "dg": "†", "ps": "¶", "ss": "ß", "12": "½", "14": "¼", "34": "¾",
    ":a": "ä", ":o": "ö", ":u": "ü", ":A": "Ä", ":O": "Ö", ":U": "Ü", "'e": "é", "`e": "è", "^e": "ê",
    "'a": "á", "`a": "à", "^a": "â", ",c": "ç", "~n": "ñ", "lh": "☜", "rh": "☞", "OK": "✓", "sq": "□",
    "Sd": "ð", "ho": "˛", "ab": "˘", "a\"": "˝", "a-": "¯", "ad": "¨", "ac": "¸", "ao": "˚", "a^": "^",
    "a~": "~", "lB": "[", "rB": "]", "lC": "{", "rC": "}", "la": "⟨", "ra": "⟩", "st": "∋", "if": "∞",
}
# Strings \*(xx / \*[xx] that man pages use for quotes and the like.
_STRINGS = {"lq": "“", "rq": "”", "R": "®", "Tm": "™", "aq": "'", "dq": '"', "Lq": "“", "Rq": "”"}
# Macros whose arguments are visible text (man and mdoc); alternating-font macros join them.
_TEXT_MACROS = {"SH", "SS", "B", "I", "SM", "SB", "Sh", "Ss", "Nd", "Dt", "Em", "Sy", "Li", "Dq", "Sq",
                "Qq", "Pq", "Ql", "Ad", "An", "Ar", "Cd", "Cm", "Dv", "Er", "Ev", "Fa", "Fn", "Ft", "Ic",
                "In", "Lk", "Ms", "Nm", "No", "Pa", "Va", "Vt", "Xr", "Op", "Oo", "Oc", "It", "D1", "Dl",
                "Tn", "Ux", "Bx", "At", "Fx", "Nx", "Ox", "St", "Mt", "%A", "%T", "%B", "%J", "%D", "%O"}
_ALTERNATING = {"BI", "BR", "IB", "IR", "RB", "RI"}
_MDOC_WORD = re.compile(r"^(?:[A-Z][a-z]|%[A-Z])$")
_ESCAPE = re.compile(
    r"\\(?:"
    r"\[(?P<bracket>[^\]]*)\]"          # \[name] or \[u00E4]
    r"|\((?P<paren>..)"                 # \(xx
    r"|\*(?:\[(?P<sbr>[^\]]*)\]|\((?P<spar>..)|(?P<sone>.))"  # strings
    r"|[fFn](?:\[[^\]]*\]|\(..|.)"      # font / number registers
    r"|s[-+]?(?:\d+|\[[^\]]*\]|\(\d\d)"  # size changes
    r"|[hvwlLxXoCNkzbZ]'[^']*'"          # motions, widths, overstrikes
    r"|(?P<one>.))", re.S)


def _named(name: str) -> str:
    if re.fullmatch(r"u[0-9A-Fa-f]{4,6}(?:_[0-9A-Fa-f]{4,6})*", name):
        return "".join(chr(int(part.lstrip("u"), 16)) for part in name.split("_"))
    return _CHARS.get(name, "")


def _unescape(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        if m.group("bracket") is not None:
            return _named(m.group("bracket"))
        if m.group("paren") is not None:
            return _CHARS.get(m.group("paren"), "")
        string = m.group("sbr") or m.group("spar") or m.group("sone")
        if string is not None:
            return _STRINGS.get(string, "")
        one = m.group("one")
        if one is None:
            return ""  # a font change, register, size or motion
        return {"-": "-", "e": "\\", "\\": "\\", " ": " ", "~": " ", "0": " ", "t": "\t", "'": "´",
                "`": "`", ".": ".", '"': ""}.get(one, "")  # \& \, \/ \| \^ \% \: \c \) and the rest: nothing

    return _ESCAPE.sub(sub, text)


def _args(line: str) -> list[str]:
    """Arguments of a request line, honouring double quotes ("" inside quotes is one quote)."""
    out, i, n = [], 0, len(line)
    while i < n:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            break
        if line[i] == '"':
            i += 1
            arg = []
            while i < n:
                if line[i] == '"':
                    if i + 1 < n and line[i + 1] == '"':
                        arg.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                arg.append(line[i])
                i += 1
            out.append("".join(arg))
        else:
            j = i
            while j < n and line[j] not in " \t":
                j += 1
            out.append(line[i:j])
            i = j
    return out


def _strip_comment(line: str) -> str:
    # \" starts a comment, but \\" is an escaped backslash followed by a quote
    m = re.search(r'(?<!\\)(?:\\\\)*\\"', line)
    return line[:m.start() + (len(m.group()) - 2)] if m else line


def roff_to_text(source: str) -> str:
    """Visible text of a man page in roff (man or mdoc macros); see the module docstring."""
    lines, out = source.splitlines(), []
    skip_until: str | None = None
    table_format, table_tab = False, "\t"
    for raw in lines:
        line = _strip_comment(raw).rstrip()
        if skip_until is not None:
            if skip_until in line or (skip_until == ".." and line.strip() == ".."):
                skip_until = None
            continue
        if line[:1] in (".", "'"):
            parts = _args(line[1:].strip())
            if not parts:
                continue
            name, args = parts[0], parts[1:]
            if name in ("de", "de1", "ds", "am", "ig"):
                skip_until = ".." if name != "ds" else None
                continue
            if name in ("if", "ie", "el"):
                if "\\{" in line and "\\}" not in line:
                    skip_until = "\\}"
                continue
            if name == "TS":
                table_format, table_tab = True, "\t"
                continue
            if name == "TE":
                table_format, table_tab = False, "\t"
                continue
            if name in ("SH", "Sh", "SS", "Ss", "PP", "LP", "P", "Pp", "sp", "TP", "IP", "HP", "Bl", "El"):
                out.append("")
            if name in _ALTERNATING:
                text = "".join(args)
            elif name == "IP":
                text = args[0] if args else ""
            elif name == "Fl":
                text = " ".join("-" + a if not _MDOC_WORD.match(a) else "" for a in args) or "-"
            elif name in _TEXT_MACROS:
                text = " ".join(a for a in args if not _MDOC_WORD.match(a) or name in ("B", "I", "SH", "SS"))
            elif name in ("UE", "ME"):
                text = "".join(args)
            else:
                continue  # layout only
            text = _unescape(text).strip()
            if text:
                out.append(text)
            continue
        if table_format:
            tab = re.search(r"tab\s*\((.)\)", line)
            if line.rstrip().endswith(";") and tab:
                table_tab = tab.group(1)  # the options line names the column separator
            if line.rstrip().endswith("."):
                table_format = False  # the last format line; data follows
            continue
        if table_tab != "\t":
            line = line.replace(table_tab, "\t")
        text = _unescape(line.replace("T{", "").replace("T}", "")).replace("\t", " ")
        out.append(text.rstrip())
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def man_root(debian_root: Path, lang: str) -> Path:
    return debian_root / "usr" / "share" / "man" / lang


def read_pages(folder: Path) -> list[Document]:
    """Every page below ``folder`` (``man<N>/<name>.<N>.gz``) as text, sorted by id."""
    docs = []
    for path in sorted(folder.glob("man*/*")):
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
                source = fh.read()
        except (OSError, EOFError) as exc:
            logger.warning("skipping unreadable man page %s (%s)", path, exc)
            continue
        if source.lstrip().startswith(".so "):
            continue  # an alias of another page
        text = roff_to_text(source)
        if text:
            doc_id = str(path.relative_to(folder)).removesuffix(".gz")
            docs.append(Document(doc_id, text))
    return docs
