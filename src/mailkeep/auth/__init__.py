"""Authentication: password storage, SASL, throttling.

* ``passwords`` — argon2id hashes and SCRAM-SHA-256 stored keys (both SASLprep'd).
* ``saslprep`` — RFC 4013.
* ``sasl`` — server mechanisms PLAIN, LOGIN, SCRAM-SHA-256 as sans-I/O objects, plus
  the base64/cancel helpers every protocol needs.
* ``sasl_client`` — the same mechanisms for mailkeep's own clients.
* ``throttle`` — failed-login delays per client address and per account.
* ``service`` — ``Authenticator``: what protocol sessions call (``login``, ``sasl``,
  ``mechanisms``, ``plaintext_allowed``).
"""
