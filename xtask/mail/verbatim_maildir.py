"""An aiosmtpd handler that files each message into a maildir byte for byte.

aiosmtpd's own ``Mailbox`` handler parses every message and writes Python's
re-serialisation of it (LF line ends, refolded headers), which costs the
local mail server twice the CPU per confirmation email and shows tests
Python's rendition rather than what the origin sent. This one keeps the
bytes as received (CRLF, dot-unstuffed), preceded by the envelope headers
``Mailbox`` adds: ``X-Peer`` (the connection), ``X-MailFrom``, ``X-RcptTo``.

    PYTHONPATH=xtask/mail python3 -m aiosmtpd -n -l 127.0.0.1:2525 \\
        -c verbatim_maildir.VerbatimMaildir MAILDIR
"""

import itertools
import os
import socket
import time


class VerbatimMaildir:
    _sequence = itertools.count()

    def __init__(self, maildir):
        self.maildir = maildir
        for folder in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(maildir, folder), exist_ok=True)

    async def handle_DATA(self, server, session, envelope):
        envelope_headers = (
            f"X-Peer: {session.peer}\r\n"
            f"X-MailFrom: {envelope.mail_from}\r\n"
            f"X-RcptTo: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        # The maildir convention: a unique name, written in tmp/ and then
        # renamed into new/, so readers never see half a message.
        name = f"{time.time_ns()}.P{os.getpid()}Q{next(self._sequence)}.{socket.gethostname()}"
        partial = os.path.join(self.maildir, "tmp", name)
        with open(partial, "wb") as file:
            file.write(envelope_headers)
            file.write(envelope.original_content)
        os.rename(partial, os.path.join(self.maildir, "new", name))
        return "250 OK"

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("VerbatimMaildir takes one argument: the maildir")
        return cls(args[0])
