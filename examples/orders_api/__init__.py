"""The orders API: a FastAPI service protected by policyd (README.md)."""
