"""Notifications: each project's feed as digests ("12 new images", "Anna sent 24 picks"), one per interval,
to signed webhooks and by e-mail, from a persistent outbox (docs/notifications.md).

`store` keeps the webhooks, recipients, cursor and outbox; `digest` counts; `deliver` sends one;
`notifier` runs them; `cli` is `fotoflo webhook` and `fotoflo notify`.
"""
