"""Access control: roles per project, API tokens, share links, browser sessions, CSRF, rate limits.

- `roles`: `Role`, `Action`, the table of which role may do what, and `Principal` (who asks).
- `store`: the `AuthStore` protocol, `SqlAuthStore` (its SQL) and `SQLiteAuthStore` (`DATA/auth.sqlite`);
  `postgres`: `PostgresAuthStore` (the `--db` database's `auth_*` tables, shared by its servers).
- `access`: `Access`, what the server asks: who is this request, may it, what does it see.
- `cli`: `fotoflo token …` and `fotoflo share …`.

The sign-in pages and the hook that guards the Panel page are `dashboard.http.pages`.
"""

from __future__ import annotations

from dashboard.auth.access import Access, AuthRefused, ConfigError, auth_required, is_loopback
from dashboard.auth.roles import OPEN, Action, Principal, Role
from dashboard.auth.store import AuthStore, SQLiteAuthStore

__all__ = [
    "OPEN",
    "Access",
    "Action",
    "AuthRefused",
    "AuthStore",
    "ConfigError",
    "Principal",
    "Role",
    "SQLiteAuthStore",
    "auth_required",
    "is_loopback",
]
