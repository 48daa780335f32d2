"""Readers of each benchmark's files, in the formats they are released in, into :class:`Item` lists."""
