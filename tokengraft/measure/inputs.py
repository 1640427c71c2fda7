"""Everything between the user's text and token ids: corpora, tokenizing, sanity checks.

A document is tokenized without the tokenizer's own special tokens and then gets the one
start token chosen by :mod:`tokengraft.lm.start`, so no document ever carries a
double BOS, and the bytes counted are exactly the UTF-8 bytes of the text that is scored.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import torch

from tokengraft.assets.corpus import Corpus, Document
from tokengraft.errors import TokengraftError
from tokengraft.lm.head import text_config
from tokengraft.measure.options import DEFAULT_BATCH_TOKENS, MAX_DEFAULT_CONTEXT, EvalOptions

logger = logging.getLogger(__name__)


@dataclass
class TokenizedCorpus:
    name: str
    sequences: list[torch.Tensor]  # one (n + 1,) long tensor per document: start id, then its n tokens
    num_bytes: int                 # UTF-8 bytes of the documents in ``sequences``
    documents: int
    ids: list[str] = field(default_factory=list)    # each sequence's document id
    sizes: list[int] = field(default_factory=list)  # each sequence's UTF-8 bytes

    @property
    def num_tokens(self) -> int:
        """Scored tokens: all but the start token of each document."""
        return sum(len(s) - 1 for s in self.sequences)


def as_corpora(texts_or_corpus: str | Corpus | Sequence[str] | Sequence[Corpus], max_bytes: int | None) -> list[Corpus]:
    """Accept a text, a list of texts (one corpus), a Corpus or a list of Corpus; truncate each."""
    if isinstance(texts_or_corpus, (str, Corpus)):
        items: list[Any] = [texts_or_corpus]
    else:
        items = list(texts_or_corpus)
    if items and all(isinstance(x, str) for x in items):
        corpora = [Corpus("text", [Document(str(i), t) for i, t in enumerate(items)])]
    elif items and all(isinstance(x, Corpus) for x in items):
        corpora = list(items)
    else:
        raise TypeError("bits_per_byte takes a str, a list of str, a Corpus or a list of Corpus")
    corpora = [c.truncate(max_bytes) for c in corpora]
    check_scorable(corpora)
    return corpora


def check_scorable(corpora: Sequence[Corpus]) -> None:
    """Refuse a corpus with nothing to score: no text at all, or only whitespace.

    Whitespace inside real text is scored like any text; a corpus of nothing but spaces and
    newlines is almost always a wrong file, and its BPB would mean nothing.
    """
    for corpus in corpora:
        if not any(d.text for d in corpus.documents):
            raise TokengraftError(f"corpus {corpus.name} is empty: it has no text to score; check the spec or its files")
        if not any(d.text.strip() for d in corpus.documents):
            raise TokengraftError(f"corpus {corpus.name} holds only whitespace ({corpus.num_bytes:,} bytes): nothing "
                                  "to score; check the spec or its files")


def document_chunks(documents: list[Document], chunk_bytes: int) -> Iterator[list[Document]]:
    """Consecutive groups of about ``chunk_bytes`` characters of non-empty documents."""
    chunk: list[Document] = []
    size = 0
    for doc in documents:
        if not doc.text:
            continue
        chunk.append(doc)
        size += len(doc.text)
        if size >= chunk_bytes:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def tokenize_documents(tokenizer: Any, name: str, docs: list[Document], start_id: int,
                       check_roundtrip: bool = False) -> TokenizedCorpus:
    """Token ids of every document, each prefixed with ``start_id``.

    A document that tokenizes to nothing (text the tokenizer normalises away) is dropped,
    and its bytes are not counted, since none of it is scored.
    """
    sizes = []
    for doc in docs:
        try:
            sizes.append(len(doc.text.encode("utf-8")))
        except UnicodeEncodeError as exc:
            raise TokengraftError(
                f"document {doc.id} of corpus {name} is not valid UTF-8 text ({exc.reason}); fix or remove it"
            ) from None
    texts = [d.text for d in docs]
    ids = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"] if texts else []
    if check_roundtrip:
        _warn_if_lossy(tokenizer, name, texts, ids)
    kept = [(doc.id, doc_ids, size) for doc, doc_ids, size in zip(docs, ids, sizes) if doc_ids]
    sequences = [torch.tensor([start_id, *doc_ids], dtype=torch.long) for _, doc_ids, _ in kept]
    return TokenizedCorpus(name, sequences, sum(size for *_, size in kept), len(sequences),
                           ids=[doc_id for doc_id, *_ in kept], sizes=[size for *_, size in kept])


def _warn_if_lossy(tokenizer: Any, name: str, texts: list[str], ids: list[list[int]]) -> None:
    # BPB divides by the bytes of the text; a tokenizer that lowercases or maps text to
    # <unk> scores something else, which the user should know about.
    decoded = tokenizer.batch_decode(ids, clean_up_tokenization_spaces=False)
    lossy = sum(d != t for d, t in zip(decoded, texts))
    if lossy:
        logger.warning("corpus %s: the tokenizer does not reproduce %d of %d documents exactly "
                    "(normalisation or <unk>); BPB is then not over the original text", name, lossy, len(texts))



def check_vocab_fits(model: Any, tokenizer: Any) -> None:
    """Every id the tokenizer can produce must have an input embedding row (the largest id, not the count:
    a tokenizer with unused ids can have fewer tokens than rows and still produce an id beyond them)."""
    from tokengraft.vocab.ids import max_token_id

    rows = model.get_input_embeddings().weight.shape[0]
    fix = "use the model's own tokenizer or transplant the model to this one first"
    if len(tokenizer) > rows:
        raise TokengraftError(
            f"the tokenizer has {len(tokenizer)} token ids but the model's input embedding has only {rows} rows; {fix}")
    largest = max_token_id(tokenizer)
    if largest >= rows:
        raise TokengraftError(f"the tokenizer's largest id is {largest} but the model's input embedding has only "
                              f"{rows} rows (ids 0-{rows - 1}); {fix}")


def resolve_context(model: Any, options: EvalOptions) -> tuple[int, int]:
    """``(context, stride)`` from the options and the model's position limit."""
    limit = getattr(text_config(model), "max_position_embeddings", None)
    options.validate()
    context = options.context if options.context is not None else min(limit or MAX_DEFAULT_CONTEXT, MAX_DEFAULT_CONTEXT)
    if limit and context > limit:
        raise TokengraftError(f"context {context} is more than {limit}, the model's max_position_embeddings; "
                              f"pass --context {limit} or less")
    stride = options.stride if options.stride is not None else max(1, context // 2)
    if not 1 <= stride <= context:
        raise TokengraftError(f"stride {stride} must be between 1 and the context {context}; pass a smaller --stride")
    return context, stride


def resolve_batch_tokens(options: EvalOptions, device_type: str) -> int:
    """The token budget per batch: the option, or the default for the device."""
    if options.batch_tokens is None:
        return DEFAULT_BATCH_TOKENS.get(device_type, DEFAULT_BATCH_TOKENS["cpu"])
    if options.batch_tokens < 1:
        raise TokengraftError(f"batch tokens must be a positive token budget, got {options.batch_tokens}; pass e.g. --batch-tokens 4096")
    return options.batch_tokens
