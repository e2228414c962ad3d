#!/usr/bin/env python3
"""A real SMTP server (aiosmtpd) on loopback for the delivery tests.

    smtp_test_server.py PORT MAILDIR

Stores each accepted message as MAILDIR/NNNN.eml, and the client's address and port of
the connection it came on as MAILDIR/NNNN.peer (numbering goes on after a restart on the
same MAILDIR). Refuses, for the failure tests:
a recipient whose local part starts with `refuse` (550, permanent) and one that starts
with `busy` (451, try again later). Prints `listening 127.0.0.1:PORT` once it accepts
connections, and runs until killed.
"""

import asyncio
import itertools
import sys
from pathlib import Path

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, maildir: Path):
        self.maildir = maildir
        self.counter = itertools.count(len(list(maildir.glob("*.eml"))) + 1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0]
        if local.startswith("refuse"):
            return "550 5.1.1 mailbox unavailable"
        if local.startswith("busy"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        number = next(self.counter)
        (self.maildir / f"{number:04}.peer").write_text(f"{session.peer[0]}:{session.peer[1]}")
        (self.maildir / f"{number:04}.eml").write_bytes(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def main():
    port, maildir = int(sys.argv[1]), Path(sys.argv[2])
    maildir.mkdir(parents=True, exist_ok=True)
    controller = Controller(Handler(maildir), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"listening 127.0.0.1:{port}", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
