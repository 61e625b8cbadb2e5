"""Pure Matrix rules: no I/O, no asyncio, driven only by arguments.

Everything that must reach the same verdict on every server lives here: canonical
JSON, identifiers, room versions, hashing and signing, redaction, authorization
rules and state resolution.
"""
