"""A Django REST framework orders API guarded by policyd, served by uvicorn in a child
process for tests/test_django.py (its own settings, its own SQLite file)."""
