"""Integrations with web frameworks (each imports its framework; install it first)."""
