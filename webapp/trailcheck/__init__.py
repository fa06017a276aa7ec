"""The audit trail's own check (service) and its part of Admin › Audit (views).

A package of its own: the check runs as a background job and keeps its outcome in a setting, and
both of those features record audit events, so the audit package cannot import them back.
"""
