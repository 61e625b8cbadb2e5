"""The room server: the one place that creates, checks and persists events.

See rooms/README.md for nids, snapshots and the persist steps.
"""
