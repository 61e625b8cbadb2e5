"""The sync engine: /sync responses, tokens, and waking long-polls."""
