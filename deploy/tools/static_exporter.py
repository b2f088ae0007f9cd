#!/usr/bin/env python3
"""Serves a fixed Prometheus exposition file at /metrics on 127.0.0.1, for testing
deploy/prometheus-scrape-test.sh itself without an agent (deploy/check.sh does this).
Prints the chosen port on its first line, then serves until killed or --seconds pass.

usage: static_exporter.py FILE [--seconds N]
"""

import argparse
import http.server
import sys
import threading


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()
    with open(args.file, "rb") as f:
        body = f.read()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    threading.Timer(args.seconds, server.shutdown).start()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
