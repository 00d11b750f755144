"""Gantry's policy pack: pure rules, the offline engine behind ``gantry check`` and the CrossGuard adapter.

Importing this package has no side effects; only ``policies/__main__.py`` starts a CrossGuard server.
"""
