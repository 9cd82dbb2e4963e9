"""The language server (pygls over stdio): diagnostics as you type, hover, go to
definition, completion, formatting and document symbols for policy and test files.
Every request re-reads the set with the open documents' text over the disk's; the
sets are small, and a stale answer is worse than a slower one."""

from __future__ import annotations

import re
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from .. import __version__
from ..language.diagnostics import PolicyError
from ..testing.printer import format_text
from .analysis import analyse
from .index import Index

server = LanguageServer("policyd", __version__)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SYMBOLS = {"policy": lsp.SymbolKind.Namespace, "type": lsp.SymbolKind.Class,
            "attribute": lsp.SymbolKind.Field, "role": lsp.SymbolKind.EnumMember,
            "constant": lsp.SymbolKind.Constant, "rule": lsp.SymbolKind.Function,
            "routes": lsp.SymbolKind.Module, "fixture": lsp.SymbolKind.Variable,
            "test": lsp.SymbolKind.Method}


def _open_docs(ls: LanguageServer) -> dict[str, str]:
    return {to_fs_path(uri): doc.source for uri, doc in ls.workspace.text_documents.items()}


def _index(ls: LanguageServer, uri: str) -> tuple[Index, str, str]:
    path = to_fs_path(uri)
    docs = _open_docs(ls)
    return Index(analyse(Path(path), docs)), path, docs.get(path, "")


def _range(text: str, line: int, column: int) -> lsp.Range:
    """The word at a 1-based position (or one character) as an LSP range."""
    if line <= 0:
        return lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))
    lines = text.splitlines()
    source = lines[line - 1] if line <= len(lines) else ""
    m = _WORD.match(source, column - 1)
    end = m.end() if m else min(column, len(source) + 1)
    return lsp.Range(lsp.Position(line - 1, column - 1), lsp.Position(line - 1, max(end, column)))


def publish(ls: LanguageServer, uri: str) -> None:
    path = to_fs_path(uri)
    docs = _open_docs(ls)
    found = analyse(Path(path), docs)
    for open_path, text in docs.items():
        if open_path not in found.sources:
            continue
        items = []
        for d in found.diagnostics.get(open_path, []):
            message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
            severity = lsp.DiagnosticSeverity.Error if d.is_error else \
                lsp.DiagnosticSeverity.Warning
            items.append(lsp.Diagnostic(range=_range(text, d.line, d.column), message=message,
                                        severity=severity, code=d.code, source="policyd"))
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri=from_fs_path(open_path), diagnostics=items))


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: LanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
    publish(ls, params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: LanguageServer, params: lsp.DidChangeTextDocumentParams) -> None:
    publish(ls, params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: LanguageServer, params: lsp.DidSaveTextDocumentParams) -> None:
    publish(ls, params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
def hover(ls: LanguageServer, params: lsp.HoverParams) -> lsp.Hover | None:
    index, path, text = _index(ls, params.text_document.uri)
    pos = params.position
    found = index.hover(path, text, pos.line + 1, pos.character + 1)
    if found is None:
        return None
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=found))


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
def definition(ls: LanguageServer, params: lsp.DefinitionParams) -> lsp.Location | None:
    index, path, text = _index(ls, params.text_document.uri)
    pos = params.position
    place = index.definition(path, text, pos.line + 1, pos.character + 1)
    if place is None:
        return None
    start = lsp.Position(place.line - 1, place.column - 1)
    end = lsp.Position(place.line - 1, place.column - 1 + place.length)
    return lsp.Location(uri=from_fs_path(place.file), range=lsp.Range(start, end))


@server.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                lsp.CompletionOptions(trigger_characters=[".", " "]))
def completion(ls: LanguageServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    index, path, text = _index(ls, params.text_document.uri)
    pos = params.position
    items = [lsp.CompletionItem(label=label, detail=detail)
             for label, detail in index.completions(path, text, pos.line + 1,
                                                     pos.character + 1)]
    return lsp.CompletionList(is_incomplete=False, items=items)


@server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
def formatting(ls: LanguageServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit]:
    path = to_fs_path(params.text_document.uri)
    text = ls.workspace.get_text_document(params.text_document.uri).source
    try:
        out = format_text(text, path)
    except PolicyError:
        return []  # the syntax error is already a diagnostic; change nothing
    if out == text:
        return []
    lines = text.splitlines()
    end = lsp.Position(len(lines), 0)
    return [lsp.TextEdit(range=lsp.Range(lsp.Position(0, 0), end), new_text=out)]


@server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def symbols(ls: LanguageServer, params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
    index, path, text = _index(ls, params.text_document.uri)

    def made(name, kind, span, children):
        r = _range(text, span.line, span.column)
        return lsp.DocumentSymbol(name=name, kind=_SYMBOLS[kind], range=r, selection_range=r,
                                  children=[made(*c) for c in children])
    return [made(*s) for s in index.symbols(path)]


def main() -> int:
    server.start_io()
    return 0
