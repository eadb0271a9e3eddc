"""Bazaar: the command line, the settings and the local stack around the trade engine."""
