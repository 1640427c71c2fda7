"""The in-memory form of every corpus: named documents with stable ids.

Ids make corpora alignable: ``libreoffice:de`` and ``libreoffice:fr`` use the help page's
relative path, ``bible:web`` and ``bible:rv1909`` the verse reference, so parallel text
is matched by id, never by position.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    id: str
    text: str


@dataclass
class Corpus:
    name: str
    documents: list[Document] = field(default_factory=list)
    language: str | None = None  # ISO 639-1 code when the source knows it (libreoffice:fr -> "fr"), else None

    def texts(self) -> list[str]:
        return [d.text for d in self.documents]

    @property
    def num_bytes(self) -> int:
        return sum(len(d.text.encode("utf-8")) for d in self.documents)

    def truncate(self, max_bytes: int | None) -> "Corpus":
        """The first documents up to ``max_bytes`` UTF-8 bytes; the last one is cut at a
        character boundary so the budget is met exactly or undershot by < 4 bytes."""
        if max_bytes is None:
            return self
        out: list[Document] = []
        left = max_bytes
        for doc in self.documents:
            if left <= 0:
                break
            raw = doc.text.encode("utf-8")
            if len(raw) > left:
                text = raw[:left].decode("utf-8", errors="ignore")
                if text:
                    out.append(Document(doc.id, text))
                break
            out.append(doc)
            left -= len(raw)
        return Corpus(self.name, out, self.language)

    def by_id(self) -> dict[str, str]:
        return {d.id: d.text for d in self.documents}
