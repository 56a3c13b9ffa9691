#!/usr/bin/python3
"""A local SMTP sink for testing the delivery worker (python3-aiosmtpd).

    python3 examples/smtp_sink.py PORT DIR

listens on 127.0.0.1:PORT, writes every message it accepts to DIR as
<n>.eml, refuses recipients whose address starts with "refuse" (550), and
runs until it is terminated.  It writes DIR/ready once it listens.
"""
import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    """Keeps each accepted message as a file; refuses the "refuse" recipients."""

    def __init__(self, directory):
        self.directory = directory
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        """Accepts a recipient unless its address starts with refuse."""
        if address.startswith("refuse"):
            return "550 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        """Writes the message to the next numbered file."""
        with self.lock:
            self.count += 1
            path = os.path.join(self.directory, "%d.eml" % self.count)
        with open(path, "wb") as f:
            f.write(envelope.original_content)
        return "250 Message accepted"


def main():
    """Runs the sink until SIGTERM."""
    port, directory = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Sink(directory), hostname="127.0.0.1", port=port)
    controller.start()
    open(os.path.join(directory, "ready"), "w").close()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
