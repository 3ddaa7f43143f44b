"""mailkeep's benchmark: mailkeep and Dovecot side by side on loopback (docs/benchmarks.md).

Modules: ``corpus`` (deterministic messages), ``proto`` (lean pipelined IMAP/POP3/LMTP
clients), ``procstat`` and ``measure`` (server CPU and memory from /proc), ``servers``
(starting and resetting each server), ``workloads`` (what is measured; plugins welcome),
``checks`` (correctness), ``runner`` (order and repetitions), ``targets`` and ``report``.
"""
