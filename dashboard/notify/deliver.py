"""Sending one notification: a signed webhook POST, or an e-mail over SMTP; and what its answer means.

Each send returns an `Outcome`: `done` (a 2xx, or the SMTP server took it), `give_up` (the receiver
refused it for good: a 4xx other than 408/429, a 5xx SMTP reply), or `retry` (anything else: no
connection, a timeout, a 5xx, a 408/429, a 4xx SMTP reply). The caller decides when to retry.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from dashboard.backends import redact_url
from dashboard.config import ConfigError
from dashboard.notify.digest import html_text, plain_text, subject

SIGNATURE_HEADER = "X-Fotoflo-Signature"
TIMESTAMP_HEADER = "X-Fotoflo-Timestamp"
DELIVERY_HEADER = "X-Fotoflo-Delivery"
EVENT_HEADER = "X-Fotoflo-Event"
SEND_TIMEOUT_S = 10.0
RETRYABLE_4XX = (408, 429)

DONE, RETRY, GIVE_UP = "done", "retry", "give_up"


@dataclass(frozen=True)
class Outcome:
    verdict: str  # DONE, RETRY or GIVE_UP
    detail: str = ""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=HEX`: HMAC-SHA256 with the webhook's secret of `TIMESTAMP.BODY` (the raw bytes sent)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


_ADDRESS = re.compile(r"[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+")
MAX_ADDRESS_CHARS = 254


def check_address(address: str) -> str:
    """An e-mail address as stored (stripped), else `ValueError`."""
    address = address.strip()
    if len(address) > MAX_ADDRESS_CHARS or not _ADDRESS.fullmatch(address):
        raise ValueError(f"{address[:80]!r} is not an e-mail address")
    return address


def check_webhook_url(url: str) -> str:
    """The URL if it can be a webhook (http or https, with a host), else `ValueError` saying why."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"a webhook URL must be http:// or https://, not {parts.scheme or 'without a scheme'}")
    if not parts.hostname:
        raise ValueError("a webhook URL needs a host")
    if parts.username or parts.password:
        raise ValueError("a webhook URL must not carry a user or password (the signature authenticates it)")
    if len(url) > 2000:
        raise ValueError("a webhook URL must be at most 2000 characters")
    return url.strip()


def post_webhook(
    client: httpx.Client, url: str, secret: str, body: str, *, delivery_id: str, now_s: float | None = None
) -> Outcome:
    """POST the digest `body` to `url`, signed; never follows a redirect (a 3xx is retried)."""
    raw = body.encode()
    timestamp = str(int(time.time() if now_s is None else now_s))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Fotoflo-Webhook/1",
        EVENT_HEADER: "digest",
        DELIVERY_HEADER: delivery_id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, raw),
    }
    try:
        response = client.post(url, content=raw, headers=headers, timeout=SEND_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return Outcome(RETRY, f"{type(exc).__name__}: {exc}")
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(DONE, str(status))
    if 400 <= status < 500 and status not in RETRYABLE_4XX:
        return Outcome(GIVE_UP, f"answered {status}")
    return Outcome(RETRY, f"answered {status}")


@dataclass(frozen=True)
class SmtpConfig:
    """Where e-mail goes: `smtp://USER:PASS@HOST:PORT` (STARTTLS when offered) or `smtps://` (TLS from the start)."""

    host: str
    port: int
    tls: bool
    user: str | None
    password: str | None
    sender: str

    @classmethod
    def parse(cls, url: str, sender: str | None = None) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError(f"--smtp {redact_url(url)}: give smtp://USER:PASS@HOST:PORT or smtps://…")
        try:
            port = parts.port or (465 if parts.scheme == "smtps" else 25)
        except ValueError:
            raise ConfigError(f"--smtp {redact_url(url)}: the port is not a number") from None
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        return cls(parts.hostname, port, parts.scheme == "smtps", user, password,
                   sender or f"fotoflo@{parts.hostname}")  # fmt: skip

    def __repr__(self) -> str:  # never the password, whoever prints it
        return f"SmtpConfig({self.host}:{self.port}, tls={self.tls}, user={self.user!r}, sender={self.sender!r})"


def email_message(body: dict[str, Any], sender: str, to: str, *, delivery_id: str) -> EmailMessage:
    """The digest as an e-mail: plain text, with a simple HTML alternative (every text escaped)."""
    message = EmailMessage()
    message["Subject"] = subject(body)
    message["From"] = sender
    message["To"] = to
    message["X-Fotoflo-Delivery"] = delivery_id
    message.set_content(plain_text(body))
    message.add_alternative(html_text(body), subtype="html")
    return message


def send_email(config: SmtpConfig, message: EmailMessage) -> Outcome:
    """Send `message`; a connection, TLS or 4xx failure is retried, a 5xx refusal is not."""
    context = ssl.create_default_context()
    try:
        smtp: smtplib.SMTP
        if config.tls:
            smtp = smtplib.SMTP_SSL(config.host, config.port, timeout=SEND_TIMEOUT_S, context=context)
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=SEND_TIMEOUT_S)
        with smtp:
            smtp.ehlo()
            if not config.tls and smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
            if config.user is not None:
                smtp.login(config.user, config.password or "")
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        verdict = RETRY if all(400 <= code < 500 for code in codes) else GIVE_UP
        return Outcome(verdict, f"recipient refused: {codes}")
    except smtplib.SMTPResponseException as exc:
        # Only the code and the server's words: never the command (AUTH carries the password).
        verdict = RETRY if 400 <= exc.smtp_code < 500 else GIVE_UP
        return Outcome(verdict, f"SMTP {exc.smtp_code}")
    except (smtplib.SMTPException, OSError) as exc:
        return Outcome(RETRY, f"{type(exc).__name__}")
    return Outcome(DONE)
