"""Jinja2 templates for auth mails; a file in ``OWNBASE_MAIL_TEMPLATES_DIR`` overrides the bundled one.

Templates see GoTrue's variable names: ``ConfirmationURL``, ``Token``, ``TokenHash``, ``SiteURL``,
``Email``, ``NewEmail``, ``RedirectTo``, ``Data``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, select_autoescape

from ownbase.mail.mailer import Message
from ownbase.settings import Settings

KINDS = ("confirmation", "magiclink", "recovery", "email_change", "invite", "reauthentication")


@lru_cache(maxsize=8)
def _env(override_dir: str) -> Environment:
    loaders: list[Any] = []
    if override_dir:
        loaders.append(FileSystemLoader(str(Path(override_dir))))
    loaders.append(PackageLoader("ownbase.mail", "templates"))
    return Environment(loader=ChoiceLoader(loaders),
                       autoescape=select_autoescape(enabled_extensions=("html",), default=False))


def subject_for(settings: Settings, kind: str) -> str:
    return {
        "confirmation": settings.mail_subject_confirmation,
        "magiclink": settings.mail_subject_magiclink,
        "recovery": settings.mail_subject_recovery,
        "email_change": settings.mail_subject_email_change,
        "invite": settings.mail_subject_invite,
        "reauthentication": "Confirm reauthentication",
    }[kind]


def render(settings: Settings, kind: str, to: str, variables: dict[str, Any]) -> Message:
    env = _env(settings.mail_templates_dir)
    values = {"SiteURL": settings.site_url, "Email": to, **variables}
    html = env.get_template(f"{kind}.html").render(**values)
    text = env.get_template(f"{kind}.txt").render(**values)
    subject = env.from_string(subject_for(settings, kind)).render(**values)
    return Message(to=to, subject=subject, text=text, html=html, kind=kind)
