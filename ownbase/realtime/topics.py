"""Channel keys. As on Supabase, a private channel and a public channel of the same name are
different channels: they are keyed ``priv:<topic>`` / ``pub:<topic>`` in the hub and on the bus."""

from __future__ import annotations


def hub_key(topic: str, private: bool) -> str:
    return ("priv:" if private else "pub:") + topic


def topic_of(key: str) -> str:
    return key.split(":", 1)[1]
