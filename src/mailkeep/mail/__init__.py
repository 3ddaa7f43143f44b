"""Mail messages as data: parsed once at delivery/APPEND, served from stored results.

Public entry points:

* ``message.parse(raw) -> ParsedMessage`` and ``message.to_crlf(raw)``
* ``structure``: ``Part``, ``encode``/``decode``, ``section_range``, ``find_part``,
  ``header_fields``, ``decode_transfer`` (BODY[section] and BINARY[section])
* ``imapdata``: ``quote``, ``nstring`` (and ``literal``, ``nstring_nolf``,
  ``string_for_humans``) for rendering IMAP strings
* ``flags``: system flags and keywords

Internals, one job each: ``lexer`` (RFC 5322 tokens), ``headers`` (header blocks),
``rfc2047`` (encoded-words), ``charsets``, ``address`` (address lists), ``mimeparams``
(Content-* fields), ``mime`` (the MIME parser), ``envelope``, ``bodystructure``, ``text``
(search text and preview), ``subject`` (RFC 5256 base subject). No I/O anywhere here.
"""
