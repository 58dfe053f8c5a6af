"""Command-line entry points (`python weather.py <command>`)."""
