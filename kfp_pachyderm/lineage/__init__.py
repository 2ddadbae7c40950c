"""Provenance graphs: ``trace`` walks from a commit or image to everything upstream, and
renders it as text, JSON, Markdown, HTML or OpenLineage events.
"""
