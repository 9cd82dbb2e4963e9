"""`policyd lsp` in a real session: pygls' LanguageClient starts the server as a child
process and speaks LSP to it over stdio, as an editor does."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys

import pytest
from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

from policyd.testing.printer import format_text

from .conftest import EXAMPLES, ROOT


class Session:
    def __init__(self, client: LanguageClient):
        self.client, self.diagnostics, self.changed = client, {}, asyncio.Event()
        self.messages: list[str] = []  # the server's window/showMessage: errors

    def open(self, path, text=None):
        text = path.read_text() if text is None else text
        self.client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=from_fs_path(str(path)),
                                               language_id="policyd", version=1, text=text)))

    def change(self, path, text, version=2):
        self.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=from_fs_path(str(path)),
                                                              version=version),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)]))

    async def diagnosed(self, path, timeout=20.0):
        uri = from_fs_path(str(path))
        end = asyncio.get_running_loop().time() + timeout
        while uri not in self.diagnostics:
            assert not self.messages, self.messages
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), end - asyncio.get_running_loop().time())
        return self.diagnostics.pop(uri)

    async def hover(self, path, line, character):
        found = await self.client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=from_fs_path(str(path))),
            position=lsp.Position(line, character)))
        return found.contents.value if found else None

    async def definition(self, path, line, character):
        return await self.client.text_document_definition_async(lsp.DefinitionParams(
            text_document=lsp.TextDocumentIdentifier(uri=from_fs_path(str(path))),
            position=lsp.Position(line, character)))

    async def complete(self, path, line, character):
        found = await self.client.text_document_completion_async(lsp.CompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=from_fs_path(str(path))),
            position=lsp.Position(line, character)))
        return {i.label for i in found.items}


def _at(text: str, needle: str, offset: int = 0) -> tuple[int, int]:
    """The 0-based (line, character) of `needle` (plus `offset`) in `text`."""
    for i, line in enumerate(text.splitlines()):
        if needle in line:
            return i, line.index(needle) + offset
    raise AssertionError(needle)


async def _run(tmp):
    client = LanguageClient("policyd-tests", "1")
    session = Session(client)

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def diagnostics(params: lsp.PublishDiagnosticsParams):
        session.diagnostics[params.uri] = params.diagnostics
        session.changed.set()

    @client.feature(lsp.WINDOW_SHOW_MESSAGE)
    def shown(params: lsp.ShowMessageParams):
        session.messages.append(params.message)
        session.changed.set()

    await client.start_io(sys.executable, "-m", "policyd", "lsp", cwd=str(ROOT),
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        await client.initialize_async(lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(), root_uri=from_fs_path(str(tmp))))
        client.initialized(lsp.InitializedParams())
        await _exercise(session, tmp / "orders")
        await client.shutdown_async(None)
        client.exit(None)
    finally:
        await client.stop()


async def _exercise(s: Session, tmp):
    orders, schema, tests = tmp / "orders.policy", tmp / "schema.policy", \
        tmp / "orders.test.policy"
    text = orders.read_text()
    s.open(orders)
    assert not await s.diagnosed(orders)  # the set checks

    # diagnostics as you type: the checker's code, range and hint
    broken = text.replace("resource.total < refund_limit", "resource.totl < refund_limit")
    s.change(orders, broken)
    found = await s.diagnosed(orders)
    assert [d.code for d in found] == ["E311"], found
    line, col = _at(broken, "totl")
    assert found[0].range == lsp.Range(lsp.Position(line, col), lsp.Position(line, col + 4))
    assert "hint: did you mean `total`?" in found[0].message
    s.change(orders, text, 3)
    assert not await s.diagnosed(orders)

    # hover: an attribute's type, a role's inheritance, a rule's full name, a constant
    assert "`number`" in await s.hover(orders, *_at(text, "resource.total", 10))
    assert "extends editor, support" in await s.hover(orders, *_at(text, "is admin", 4))
    assert "orders.tenant_isolation" in await s.hover(orders, *_at(text, "tenant_isolation"))
    assert "orders#2" in await s.hover(orders, *_at(text, "allow read, list"))
    assert "const refund_limit = 500" in await s.hover(orders, *_at(text, "refund_limit"))

    # go to definition: constants, types, roles, attributes, fixtures
    where = await s.definition(orders, *_at(text, "refund_limit"))
    assert where.uri == from_fs_path(str(schema))
    schema_text = schema.read_text()
    assert where.range.start.line == _at(schema_text, "const refund_limit")[0]
    where = await s.definition(orders, *_at(text, "for Order", 4))
    assert where.range.start.line == _at(schema_text, "resource Order")[0]
    where = await s.definition(orders, *_at(text, "is support", 3))
    assert where.range.start.line == _at(schema_text, "role support")[0]
    where = await s.definition(orders, *_at(text, "resource.total", 10))
    assert where.range.start.line == _at(schema_text, "total: number")[0]

    # completion: attributes after `resource.`, roles after `is`, actions in rule heads
    edited = text.replace("  no_delete:", "  x: allow read when resource.\n  y: allow read "
                          "when principal is \n  allow \n  no_delete:")
    s.change(orders, edited, 4)
    await s.diagnosed(orders)
    line = _at(edited, "when resource.")[0]
    attrs = await s.complete(orders, line, len(edited.splitlines()[line]))
    assert {"total", "card_last4", "owner", "id"} <= attrs
    line = _at(edited, "when principal is ")[0]
    assert {"viewer", "support", "admin"} <= await s.complete(
        orders, line, len(edited.splitlines()[line]))
    line = edited.splitlines().index("  allow ")
    assert {"read", "refund", "delete"} <= await s.complete(orders, line, 8)
    s.change(orders, text, 5)
    await s.diagnosed(orders)

    # a test file: fixtures complete after `given`, and go to their definition
    tests_text = tests.read_text()
    s.open(tests)
    await s.diagnosed(tests)
    given_line = _at(tests_text, "given alice, order1, office")[0]
    assert {"alice", "bob_admin", "order1", "office"} <= await s.complete(tests, given_line, 8)
    where = await s.definition(tests, given_line, 9)
    assert where.range.start.line == _at(tests_text, "fixture alice")[0]

    # formatting through `policyd fmt`, and the outline
    messy = "role   a\nrole b    extends a   # b\n"
    scratch = tmp / "scratch.policy"
    s.open(scratch, messy)
    await s.diagnosed(scratch)
    edits = await s.client.text_document_formatting_async(lsp.DocumentFormattingParams(
        text_document=lsp.TextDocumentIdentifier(uri=from_fs_path(str(scratch))),
        options=lsp.FormattingOptions(tab_size=2, insert_spaces=True)))
    assert [e.new_text for e in edits] == [format_text(messy, str(scratch))]
    outline = await s.client.text_document_document_symbol_async(lsp.DocumentSymbolParams(
        text_document=lsp.TextDocumentIdentifier(uri=from_fs_path(str(schema)))))
    names = {sym.name: sym for sym in outline}
    assert {"User", "Order", "refund_limit", "admin"} <= set(names)
    assert "card_last4" in {c.name for c in names["Order"].children}
    await _relationships(s, tmp.parent / "repos")


async def _relationships(s: Session, tmp):
    """Language 1.2: entity types and references in hover, definitions and completion."""
    policy, schema = tmp / "repos.policy", tmp / "schema.policy"
    text, schema_text = policy.read_text(), schema.read_text()
    s.open(policy)
    assert not await s.diagnosed(policy)
    s.open(schema)
    # the only finding in the schema is W203: Repository has no show rule
    assert [d.code for d in await s.diagnosed(schema)] == ["W203"]
    # a referenced type: hover shows its parents, definition goes to its declaration
    assert "in OrgPermission" in await s.hover(schema, *_at(schema_text, "owner: Organization",
                                                            8))
    where = await s.definition(policy, *_at(text, "resource.owner.admins", 9))
    assert where.range.start.line == _at(schema_text, "  owner: Organization")[0]
    where = await s.definition(schema, *_at(schema_text, "owner: Organization", 8))
    assert where.range.start.line == _at(schema_text, "entity Organization")[0]
    # completion: attributes through a reference, entity literals after `in`
    edited = text.replace("  org_admins:", "  x: allow read when resource.owner.\n"
                          "  y: allow read when principal in \n  org_admins:")
    s.change(policy, edited, 2)
    await s.diagnosed(policy)
    line = _at(edited, "x: allow read when resource.owner.")[0]
    assert {"readers", "writers", "admins"} <= await s.complete(
        policy, line, len(edited.splitlines()[line]))
    line = _at(edited, "y: allow read when principal in ")[0]
    assert {'Team("")', 'Organization("")'} <= await s.complete(
        policy, line, len(edited.splitlines()[line]))


def test_a_language_server_session_over_stdio(tmp_path):
    pytest.importorskip("pygls")
    shutil.copytree(EXAMPLES / "orders", tmp_path / "orders")
    shutil.copytree(EXAMPLES / "repos", tmp_path / "repos")
    asyncio.run(asyncio.wait_for(_run(tmp_path), 90))
