"""Outgoing mail over SMTP (aiosmtplib). Without ``STACKBE_SMTP_URL`` the message is logged."""

from __future__ import annotations

from email.message import EmailMessage
from urllib.parse import urlparse

import aiosmtplib

from stackbe_common.logging import get_logger

log = get_logger(__name__)


class Mailer:
    def __init__(self, smtp_url: str | None, sender: str, *, log_links: bool = False) -> None:
        self._url = urlparse(smtp_url) if smtp_url else None
        self._sender = sender
        self._log_links = log_links

    async def send(self, to: str, subject: str, text: str, *, link: str | None = None) -> None:
        if self._log_links:  # dev only: a link is a credential
            log.info("mail.link", to=to, subject=subject, link=link)
        if self._url is None:
            if not self._log_links:
                log.warning(
                    "mail.not_sent", to=to, subject=subject, reason="STACKBE_SMTP_URL is not set"
                )
            return
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self._sender, to, subject
        message.set_content(text)
        try:
            await aiosmtplib.send(
                message,
                hostname=self._url.hostname or "127.0.0.1",
                port=self._url.port or 25,
                username=self._url.username,
                password=self._url.password,
                start_tls=self._url.scheme == "smtp+starttls",
                use_tls=self._url.scheme == "smtps",
                timeout=10,
            )
            log.info("mail.sent", to=to, subject=subject)
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.error("mail.failed", to=to, subject=subject, error=repr(exc))
