#!/usr/bin/env python3
"""A real gRPC server and client (grpcio, no generated code: messages are raw bytes) for apitap's
HTTP/2 fixtures and end-to-end tests.

    grpc_app.py server --listen 127.0.0.1:50051 --log calls.log   # runs until SIGTERM
    grpc_app.py client --target 127.0.0.1:50051 --log results.log [--rounds N] [--pause-ms MS]

Service shop.Catalog:
  GetItem     unary            request "ok:<id>" or "status:<CODE_NAME>" (the call ends with it)
  ListItems   server streaming request "<n>": n responses
  Upload      client streaming n requests: one response "<n>"
  Chat        bidi streaming   each request echoed

The server writes one line per finished call to --log, flushed at once:
    <client port> /shop.Catalog/<Method> <CODE_NAME> <requests> <responses>
The client runs one fixed plan per round over ONE channel (one HTTP/2 connection) and writes
one line per call: /shop.Catalog/<Method> <CODE_NAME>. Calls carry x-api-key metadata, and
those of the second half of the plan a Bearer JWT (sub "alice"); UNAUTHENTICATED is returned
when the request says so, never by accident.
"""

import argparse
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = "shop.Catalog"
JWT = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.x"  # {"sub":"alice"}, unsigned


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def line(self, text):
        with self.lock:
            self.f.write(text + "\n")
            self.f.flush()


def peer_port(context):
    # "ipv4:127.0.0.1:54321" or "ipv6:[2001:db8::1]:54321"
    return context.peer().rsplit(":", 1)[-1]


def serve(args):
    log = Log(args.log)

    def done(context, method, code, nreq, nresp):
        log.line(f"{peer_port(context)} /{SERVICE}/{method} {code.name} {nreq} {nresp}")

    def get_item(request, context):
        text = request.decode()
        if text.startswith("status:"):
            code = grpc.StatusCode[text.split(":", 1)[1]]
            done(context, "GetItem", code, 1, 0)
            context.abort(code, f"asked for {code.name}")
        done(context, "GetItem", grpc.StatusCode.OK, 1, 1)
        return b'{"id":"' + request[3:] + b'","name":"item"}'

    def list_items(request, context):
        n = int(request.decode())
        for i in range(n):
            yield b"item-%d" % i
        done(context, "ListItems", grpc.StatusCode.OK, 1, n)

    def upload(request_iterator, context):
        n = sum(1 for _ in request_iterator)
        done(context, "Upload", grpc.StatusCode.OK, n, 1)
        return str(n).encode()

    def chat(request_iterator, context):
        n = 0
        for m in request_iterator:
            n += 1
            yield m
        done(context, "Chat", grpc.StatusCode.OK, n, n)

    handlers = {
        "GetItem": grpc.unary_unary_rpc_method_handler(get_item),
        "ListItems": grpc.unary_stream_rpc_method_handler(list_items),
        "Upload": grpc.stream_unary_rpc_method_handler(upload),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    if server.add_insecure_port(args.listen) == 0:
        sys.exit(f"grpc_app: cannot listen on {args.listen}")
    server.start()
    print(f"listening {args.listen}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=1).wait()


# (method, kind, request(s)) of one round, in order.
PLAN = [
    ("GetItem", "unary", b"ok:1"),
    ("GetItem", "unary", b"ok:2"),
    ("GetItem", "unary", b"status:NOT_FOUND"),
    ("GetItem", "unary", b"status:UNAVAILABLE"),
    ("GetItem", "unary", b"status:RESOURCE_EXHAUSTED"),
    ("GetItem", "unary", b"status:UNAUTHENTICATED"),
    ("ListItems", "server", b"5"),
    ("Upload", "client", [b"part-%d" % i for i in range(4)]),
    ("Chat", "bidi", [b"hello", b"world", b"!"]),
    ("GetItem", "unary", b"status:PERMISSION_DENIED"),
    ("GetItem", "unary", b"ok:3"),
]


def run_client(args):
    log = Log(args.log)
    with grpc.insecure_channel(args.target) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        calls = {
            "unary": lambda m: channel.unary_unary(m),
            "server": lambda m: channel.unary_stream(m),
            "client": lambda m: channel.stream_unary(m),
            "bidi": lambda m: channel.stream_stream(m),
        }
        for _ in range(args.rounds):
            for i, (method, kind, req) in enumerate(PLAN):
                path = f"/{SERVICE}/{method}"
                md = [("x-api-key", "test-key-1")]
                if i >= len(PLAN) // 2:
                    md = [("authorization", "Bearer " + JWT)]
                stub = calls[kind](path)
                code = grpc.StatusCode.OK
                try:
                    if kind == "unary":
                        stub(req, metadata=md, timeout=10)
                    elif kind == "server":
                        list(stub(req, metadata=md, timeout=10))
                    elif kind == "client":
                        stub(iter(req), metadata=md, timeout=10)
                    else:
                        list(stub(iter(req), metadata=md, timeout=10))
                except grpc.RpcError as e:
                    code = e.code()
                log.line(f"{path} {code.name}")
                if args.pause_ms:
                    time.sleep(args.pause_ms / 1000)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server")
    s.add_argument("--listen", required=True)
    s.add_argument("--log", required=True)
    c = sub.add_parser("client")
    c.add_argument("--target", required=True)
    c.add_argument("--log", required=True)
    c.add_argument("--rounds", type=int, default=1)
    c.add_argument("--pause-ms", type=int, default=0, help="pause after each call")
    args = p.parse_args()
    serve(args) if args.cmd == "server" else run_client(args)


if __name__ == "__main__":
    main()
