"""Accounts, passwords, tokens, devices, profiles and account data."""
