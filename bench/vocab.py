"""Word and name pools for the corpus: plain ASCII, accented Latin, Cyrillic, Greek and CJK, so
that headers need RFC 2047 encoded-words and bodies need UTF-8 like real mail does.

None of these words contains a search needle (see ``bench.corpus.NEEDLES``); a test checks it.
"""

from __future__ import annotations

FIRST_NAMES: tuple[str, ...] = (
    "Alice", "Bob", "Carol", "David", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy",
    "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Yusuf",
    "José", "Zoë", "Søren", "Françoise", "Jürgen", "Ångström", "Łukasz", "Ólafur", "Chloé", "Renée",
    "Ольга", "Дмитрий", "Νίκος", "Ελένη", "太郎", "花子", "美咲", "Mehmet", "Ayşe", "Björk",
)  # fmt: skip

LAST_NAMES: tuple[str, ...] = (
    "Smith", "Jones", "Miller", "Davis", "Garcia", "Wilson", "Taylor", "Moore", "Clark", "Lewis",
    "Müller", "Schröder", "Gonçalves", "Ibáñez", "Nørgaard", "Dvořák", "Kowalczyk", "Lindqvist",
    "Иванова", "Петров", "Παπαδόπουλος", "山田", "佐藤", "Öztürk", "Fernández", "Weiß",
)  # fmt: skip

DOMAINS: tuple[str, ...] = (
    "example.com", "example.org", "example.net", "mail.example.com", "lists.example.org",
    "corp.example", "uni.example.edu", "büro.example", "shop.example.net", "dev.example.io",
)  # fmt: skip

WORDS: tuple[str, ...] = (
    "the", "a", "meeting", "report", "quarterly", "budget", "review", "please", "find", "attached",
    "draft", "project", "update", "schedule", "tomorrow", "invoice", "deadline", "thanks", "call",
    "notes", "agenda", "release", "server", "backup", "migration", "question", "about", "proposal",
    "contract", "design", "feedback", "summary", "weekly", "status", "travel", "plans", "lunch",
    "conference", "slides", "approval", "ticket", "issue", "customer", "order", "shipment",
    "and", "for", "with", "on", "to", "of", "in", "we", "should", "could", "will", "next", "week",
    "Grüße", "Übersicht", "café", "naïve", "résumé", "Straße", "Änderung", "façade", "coördinate",
    "отчёт", "встреча", "бюджет", "συνάντηση", "έκθεση", "会議", "報告書", "予算", "確認",
    "façon", "señal", "años", "jalapeño", "smörgåsbord", "Zürich", "Kraków", "Øresund",
)  # fmt: skip

LISTS: tuple[str, ...] = (
    "dev", "announce", "users", "ops", "sales", "hr", "random", "security", "release", "design",
)  # fmt: skip

ATTACHMENTS: tuple[tuple[str, str], ...] = (
    ("application/pdf", "pdf"),
    ("image/jpeg", "jpg"),
    ("image/png", "png"),
    ("application/zip", "zip"),
    ("application/octet-stream", "bin"),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xlsx",
    ),
)

TIMEZONES: tuple[str, ...] = ("+0000", "+0100", "+0200", "-0500", "-0800", "+0530", "+0900")
