"""A seeded fault-injecting HTTP proxy in front of moto, for chaos runs of the local stack.

A share (--rate) of the AWS calls that pass through fail the way AWS fails under load:
  - throttling, 400: DynamoDB `ProvisionedThroughputExceededException`, or `ThrottlingException`
    (DynamoDB and every other service);
  - 500 `InternalServerError` (DynamoDB) / `InternalFailure` (others);
  - a delay of 1-3 s before the call is forwarded;
  - a timeout: the connection is held for --hang seconds and closed without an answer.
Every other call is forwarded unchanged. Decisions come from random.Random(--seed), so the same
seed gives the same sequence of decisions (which call gets which depends on arrival order).

Usage: python3 tools/testing/fault_proxy.py --target http://127.0.0.1:5000 --rate 0.1 --seed 7 [--port 0]
It prints `listening on http://127.0.0.1:PORT` first, then one line per injected fault on stderr.
Standard library only.
"""

import argparse
import http.client
import http.server
import json
import random
import sys
import threading
import time
import urllib.parse

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", required=True, help="moto endpoint, e.g. http://127.0.0.1:5000")
    p.add_argument("--rate", type=float, default=0.1, help="share of calls that fail (0..1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--hang", type=float, default=5.0, help="seconds a 'timeout' holds the call")
    args = p.parse_args()
    target = urllib.parse.urlsplit(args.target)
    rng = random.Random(args.seed)
    lock = threading.Lock()
    counts = {}

    def decide():
        with lock:
            if rng.random() >= args.rate:
                return None, 0.0, 0.0
            r = rng.random()
            kind = "throttle" if r < 0.35 else "error" if r < 0.7 else "delay" if r < 0.9 else "timeout"
            return kind, rng.uniform(1.0, 3.0), rng.random()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def _answer(self, status, headers, body):
            self.send_response(status)
            for k, v in headers:
                if k.lower() not in HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _fault(self, kind, op, variant):
            dynamo = op.startswith("DynamoDB_")
            if kind == "throttle":
                name = "ProvisionedThroughputExceededException" if dynamo and variant < 0.5 else "ThrottlingException"
                status = 400
            else:
                name = "InternalServerError" if dynamo else "InternalFailure"
                status = 500
            prefix = "com.amazonaws.dynamodb.v20120810#" if dynamo else ""
            body = json.dumps({"__type": prefix + name, "message": "injected by fault_proxy"}).encode()
            with lock:
                counts[name] = counts.get(name, 0) + 1
            print(f"fault_proxy: {status} {name} {op}", file=sys.stderr, flush=True)
            self._answer(status, [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", name)], body)

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            op = self.headers.get("X-Amz-Target") or f"{self.command} {self.path.split('?')[0]}"
            kind, delay, variant = decide()
            if kind in ("throttle", "error"):
                return self._fault(kind, op, variant)
            if kind == "timeout":
                print(f"fault_proxy: timeout {op}", file=sys.stderr, flush=True)
                time.sleep(args.hang)
                self.close_connection = True
                return
            if kind == "delay":
                print(f"fault_proxy: delay {delay:.1f}s {op}", file=sys.stderr, flush=True)
                time.sleep(delay)
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                conn.request(self.command, self.path, body=body, headers=headers)
                r = conn.getresponse()
                self._answer(r.status, r.getheaders(), r.read())
            finally:
                conn.close()

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
