"""Pieces shared by the command-line front ends: settings, error handling, output."""
