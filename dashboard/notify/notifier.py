"""The notifier: one thread that turns each project's feed into digests, queues them, and delivers them.

Feed → outbox → receivers, each step durable: a digest is built from the entries after the project's
cursor and written to the outbox with the cursor's move in one transaction (`NotifyStore.enqueue`),
then delivered from there with retries. A stop between the two steps loses nothing: the next start
delivers what the outbox holds. A project gets at most one digest per `interval_s`: the first entry
after a quiet time opens a window of `interval_s`, its end sends everything the window saw.

With several servers on one PostgreSQL database, only the holder of the `fotoflo:notify` lock runs
(the lock of `dashboard.leader`); a standby takes over when the holder dies.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

import httpx

from dashboard.leader import Lock
from dashboard.notify.deliver import DONE, GIVE_UP, Outcome, SmtpConfig, email_message, post_webhook, send_email
from dashboard.notify.digest import Digest
from dashboard.notify.store import EMAIL, WEBHOOK, NotifyStore, OutboxItem
from dashboard.store import Store, UnknownProject

log = logging.getLogger("fotoflo.notify")

DEFAULT_INTERVAL_S = 60.0
LOCK_KEY = "fotoflo:notify"
RETRY_FIRST_S = 1.0  # the first retry's wait; each next one doubles it
RETRY_CAP_S = 300.0  # the longest wait between two attempts
GIVE_UP_AFTER_S = 24 * 3600.0  # a notification still undelivered a day later is recorded as failed
FEED_PAGE = 500


def backoff_s(attempts: int) -> float:
    """The wait after the `attempts`-th failed attempt: 1, 2, 4, … seconds, at most `RETRY_CAP_S`."""
    return float(min(RETRY_CAP_S, RETRY_FIRST_S * 2 ** max(0, attempts - 1)))


class Notifier:
    """Digests of every project with a webhook or a recipient, delivered from the outbox; `start`, `stop`."""

    def __init__(
        self,
        store: Store,
        notify: NotifyStore,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        smtp: SmtpConfig | None = None,
        lock: Lock | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.notify = notify
        self.interval_s = interval_s
        self.smtp = smtp
        self._lock = lock
        self._clock = clock
        self.poll_s = max(0.05, min(1.0, interval_s / 4))
        self._window_opened: dict[str, float] = {}  # project → when unsent entries were first seen
        self._last_digest: dict[str, float] = {}
        self._http = httpx.Client(follow_redirects=False, timeout=10.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fotoflo-notify", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        if self._lock is not None:
            self._lock.release()
        self._http.close()

    def _run(self) -> None:
        leading = False
        while not self._stop.is_set():
            try:
                if self._lock is None or (self._lock.held() if leading else self._lock.try_acquire()):
                    if not leading and self._lock is not None:
                        log.info("this server now sends the notifications")
                    leading = True
                    self.tick()
                elif leading:
                    log.warning("lost the notifications' lock; another server may send them")
                    leading = False
            except Exception:
                log.exception("notifications: a pass failed; the next one tries again")
            self._stop.wait(self.poll_s)

    def tick(self) -> None:
        """One pass: queue the digests that are due, then deliver what the outbox has due."""
        self.queue_digests()
        self.deliver_due()

    # -- feed → outbox --------------------------------------------------------------------

    def queue_digests(self) -> None:
        now = self._clock()
        for project in self.notify.targeted_projects():
            if self._stop.is_set():
                return
            try:
                self._queue_digest(project, now)
            except UnknownProject:
                continue

    def _queue_digest(self, project: str, now: float) -> None:
        last = self.store.last_seq(project)
        cursor = self.notify.cursor(project)
        if cursor is None:
            cursor = 0
        if last <= cursor:
            self._window_opened.pop(project, None)
            return
        opened = self._window_opened.setdefault(project, now)
        if now < opened + self.interval_s or now < self._last_digest.get(project, 0.0) + self.interval_s:
            return
        changes = []
        after = cursor
        while after < last:
            page = self.store.changes(project, after=after, limit=FEED_PAGE)
            page = [c for c in page if c.seq <= last]
            if not page:
                break
            changes += page
            after = page[-1].seq
        digest = Digest.of(project, cursor, last, changes)
        items = []
        for hook in self.notify.webhooks(project):
            seen = digest.only(hook.events)
            if not seen.empty:
                items.append((WEBHOOK, hook.id, seen.to_json()))
        if not digest.empty and self.smtp is not None:  # without --smtp, recipients get nothing (said at start)
            items += [(EMAIL, address, digest.to_json()) for _, address in self.notify.emails(project)]
        # False: another sender moved the cursor (a lock handed over mid-pass); what it counted is queued.
        queued = self.notify.enqueue(project, cursor, last, items)
        if queued and items:
            log.info("digest of %s (entries %d to %d): %d notification(s) queued", project, cursor + 1, last,
                     len(items))  # fmt: skip
            self._last_digest[project] = now
        self._window_opened.pop(project, None)

    # -- outbox → receivers ---------------------------------------------------------------

    def deliver_due(self) -> None:
        for item in self.notify.due(self._clock()):
            if self._stop.is_set():
                return
            self._deliver(item)

    def _deliver(self, item: OutboxItem) -> None:
        outcome = self._send(item)
        now = self._clock()
        attempts = item.attempts + 1
        if outcome.verdict == DONE:
            self.notify.delivered(item.id, now)
            log.info("notification %s (%s) delivered", item.id, item.channel)
        elif outcome.verdict == GIVE_UP or now - item.created_at > GIVE_UP_AFTER_S:
            self.notify.failed(item.id, attempts=attempts, error=outcome.detail, now_s=now)
            log.warning("notification %s (%s) failed for good: %s", item.id, item.channel, outcome.detail)
        else:
            wait_s = backoff_s(attempts)
            self.notify.retry(item.id, attempts=attempts, next_at=now + wait_s, error=outcome.detail)
            log.info("notification %s (%s) not delivered (%s); again in %.0f s", item.id, item.channel,
                     outcome.detail, wait_s)  # fmt: skip

    def _send(self, item: OutboxItem) -> Outcome:
        if item.channel == WEBHOOK:
            hook = self.notify.get_webhook(item.target)
            if hook is None:
                return Outcome(GIVE_UP, "the webhook was removed")
            return post_webhook(self._http, hook.url, hook.secret, item.body, delivery_id=item.id)
        if self.smtp is None:
            return Outcome(GIVE_UP, "no SMTP server configured (--smtp)")
        message = email_message(json.loads(item.body), self.smtp.sender, item.target, delivery_id=item.id)
        return send_email(self.smtp, message)
