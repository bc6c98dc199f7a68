"""A real SMTP server on loopback for the portal's tests (aiosmtpd).

Binds 127.0.0.1 on a free port and prints {"port": N} as its first line; then prints each
message it accepts as one JSON line (from, to, subject, plain-text body). It ends when its
standard input closes, so it never outlives the test that started it.
"""

import asyncio
import json
import socket
import sys
from email import message_from_bytes, policy

from aiosmtpd.smtp import SMTP


class Printer:
    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        body = message.get_body(preferencelist=("plain",))
        print(
            json.dumps(
                {
                    "from": envelope.mail_from,
                    "to": envelope.rcpt_tos,
                    "subject": str(message["subject"] or ""),
                    "text": body.get_content() if body is not None else "",
                }
            ),
            flush=True,
        )
        return "250 Message accepted for delivery"


async def main():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Printer(), hostname="localhost"), sock=sock
    )
    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


asyncio.run(main())
