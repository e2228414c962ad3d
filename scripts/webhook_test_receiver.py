#!/usr/bin/env python3
"""A real HTTP webhook receiver on loopback for the delivery tests.

    webhook_test_receiver.py PORT SECRET OUTDIR

Checks each POST's Standard Webhooks signature (HMAC-SHA256 of `id.timestamp.body`
under the base64 SECRET, `whsec_` prefix allowed) and answers 401 when it does not
match. The path chooses the answer for the failure tests: `/status/NNN` answers NNN;
`/flaky/N` answers 503 to the first N attempts of each webhook-id, then 204. Every
request is recorded in OUTDIR as NNNN.json: path, headers, body, signature_ok, answer.
Prints `listening 127.0.0.1:PORT` once it accepts connections.
"""

import base64
import collections
import hashlib
import hmac
import http.server
import itertools
import json
import sys
from pathlib import Path


def main():
    port, secret, outdir = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    key = base64.b64decode(secret.removeprefix("whsec_"))
    outdir.mkdir(parents=True, exist_ok=True)
    counter = itertools.count(1)
    attempts = collections.Counter()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
            msg_id = self.headers.get("webhook-id", "")
            timestamp = self.headers.get("webhook-timestamp", "")
            expected = base64.b64encode(
                hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
            ).decode()
            given = [part.split(",", 1)[-1] for part in self.headers.get("webhook-signature", "").split(" ")]
            signature_ok = any(hmac.compare_digest(expected, sig) for sig in given)
            attempts[msg_id] += 1
            if not signature_ok:
                answer = 401
            elif self.path.startswith("/status/"):
                answer = int(self.path.rsplit("/", 1)[1])
            elif self.path.startswith("/flaky/"):
                answer = 503 if attempts[msg_id] <= int(self.path.rsplit("/", 1)[1]) else 204
            else:
                answer = 204
            record = {
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
                "signature_ok": signature_ok,
                "answer": answer,
            }
            (outdir / f"{next(counter):04}.json").write_text(json.dumps(record))
            self.send_response(answer)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
