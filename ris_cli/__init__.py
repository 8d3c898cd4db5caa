"""Plumbing shared by every command line: options, the one error printer, output consoles."""
