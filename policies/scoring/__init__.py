"""Compliance scores, their daily snapshots and their charts."""
