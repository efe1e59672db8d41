"""Notifications: order, status and emergency events POSTed to webhooks and Telegram.

Wiring (in the app's lifespan)::

    notifier = Notifier(config.notifications, Outbox(data_dir / "notifications.db"), env)
    publisher.observers.append(notifier.observe)   # sync, never blocks
    await notifier.start()                         # delivers what a previous run left
    await notifier.outbox.page(limit=50)           # the delivery log (REST)
    await notifier.stop()                          # keeps what is still queued

Modules: :mod:`~hub.notify.events` (publications to notices, one-line texts),
:mod:`~hub.notify.outbox` (the durable store), :mod:`~hub.notify.send` (requests,
signatures), :mod:`~hub.notify.notifier` (queue and workers). See docs/notifications.md.
"""

from hub.notify.events import Notice, Notices, one_line
from hub.notify.notifier import Notifier, NotifyHealth
from hub.notify.outbox import Delivery, Outbox
from hub.notify.send import SIGNATURE_HEADER, sign

__all__ = [
    "SIGNATURE_HEADER",
    "Delivery",
    "Notice",
    "Notices",
    "Notifier",
    "NotifyHealth",
    "Outbox",
    "one_line",
    "sign",
]
