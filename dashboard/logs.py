"""Log lines without secrets: share-link secrets, URL signatures, tokens, cookies, URL passwords are redacted.

Two doors, so a secret stays out whatever handler a host application attaches: `RedactSecrets`,
a `logging.Filter` put on the handlers where `fotoflo` configures logging, and `log_request`,
tornado's `log_function`, which writes the access lines already redacted. What stays is what a
reader needs: the status, the method, the path with `…` or `[redacted]` in place of the secret.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from tornado import web

REDACTED = "[redacted]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # A share link's secret: the path is the credential.
    (re.compile(r"/s/[^/?#\s\"')]+"), "/s/…"),
    # Signed file URLs, tokens in a query or form, passwords, a share link passed back (`link=`, the
    # wall's `qr=`: maybe percent-encoded, which the path's pattern would miss): every `name=value` whose value is one.
    (
        re.compile(
            r"(?i)\b((?:sig|exp|token|access_token|secret|password|link|qr"
            r"|x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&\s\"'#;,)]*"
        ),
        rf"\1{REDACTED}",
    ),
    # An `Authorization` header's value, however it was written.
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s\"',;)]+"), rf"\1\2{REDACTED}"),
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^\r\n'\"]+"), rf"\1{REDACTED}"),
    # Session and CSRF cookies.
    (re.compile(r"\b(fotoflo_[a-z_]*=)[^;\s\"']+"), rf"\1{REDACTED}"),
    # A password in a URL's user info (`smtp://user:PASS@host`, `postgresql://user:PASS@host`).
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@"), rf"\1{REDACTED}@"),
    # An API token anywhere else (a message that quotes one).
    (re.compile(r"\bfft_[A-Za-z0-9_-]{8,}"), f"fft_{REDACTED}"),
)


def redact(text: str) -> str:
    """`text` with every secret this server knows the shape of replaced."""
    if not text:
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites each record's message (formatted with its arguments) without secrets.

    On a handler it sees every record that handler writes, also those of Panel, Bokeh and tornado;
    the record's exception text is redacted too, as it is cached on the record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it as it would
            return True
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install(*loggers: logging.Logger) -> None:
    """Put `RedactSecrets` on every handler of the root logger and of `loggers` (once each)."""
    targets = [logging.getLogger(), *loggers]
    # Loggers that do not propagate have handlers of their own (Bokeh's, when BOKEH_PY_LOG_LEVEL is set).
    targets += [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and logger.handlers
    ]
    for logger in targets:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactSecrets) for f in handler.filters):
                handler.addFilter(RedactSecrets())


access_log = logging.getLogger("tornado.access")


def log_request(handler: web.RequestHandler) -> None:
    """Tornado's `log_function`: its access line, with the URI's secrets redacted."""
    status = handler.get_status()
    if status < 400:
        level = logging.INFO
    elif status < 500:
        level = logging.WARNING
    else:
        level = logging.ERROR
    if not access_log.isEnabledFor(level):
        return
    request = handler.request
    elapsed_ms = 1000.0 * request.request_time()
    summary = redact(f"{request.method} {request.uri} ({_client(handler)})")
    access_log.log(level, "%d %s %.2fms", status, summary, elapsed_ms)


def _client(handler: Any) -> str:
    client = getattr(handler, "client", None)  # the address behind a trusted proxy, when the handler knows it
    return client if isinstance(client, str) and client else handler.request.remote_ip or ""
