"""The ``mailkeep`` command (placeholder until the CLI lands)."""


def main() -> None:
    raise SystemExit("mailkeep: the command line is being built")
