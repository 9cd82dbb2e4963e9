"""`policyd lsp`: the Language Server Protocol over stdio (docs/editors.md)."""
