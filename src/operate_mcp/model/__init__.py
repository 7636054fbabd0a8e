"""The nouns, ground floor: commands, proposals, sessions, findings, usage.

Imports nothing of the project but errors.
"""
