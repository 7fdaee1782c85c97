"""Notification senders: what a run's receivers get once it is terminal."""

from cyclone.engine.notify.senders import (
    DELIVERY_HEADER,
    NotificationResult,
    delivery_id,
    notification_due,
    send_email,
    send_notification,
    send_slack,
    send_to_endpoint,
    send_webhook,
)

__all__ = [
    "DELIVERY_HEADER",
    "NotificationResult",
    "delivery_id",
    "notification_due",
    "send_email",
    "send_notification",
    "send_slack",
    "send_to_endpoint",
    "send_webhook",
]
