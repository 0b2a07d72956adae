"""Undo for admin changes: a journal written as an intent before a change and an outcome after it, and
one handler per kind of change that replays the journal backwards, reporting conflicts instead of
overwriting (issue 26)."""
