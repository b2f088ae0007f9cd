#!/usr/bin/env python3
"""Open N keep-alive connections to an HTTP server, send one request on each, read the
responses, and hold the connections open for HOLD seconds (for measuring apitap's memory with
many tracked flows). Bounded: N connections, one request each, HOLD seconds.

usage: bench/flows.py HOST PORT N HOLD
"""
import asyncio
import sys


async def one(host, port, hold, ready):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET /flow HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    ready.append(1)
    await asyncio.sleep(hold)
    writer.close()


async def main():
    host, port, n, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    ready = []
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(one(host, port, hold, ready)))
        if i % 500 == 499:
            await asyncio.sleep(0.05)
    await asyncio.sleep(0)
    done = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [d for d in done if isinstance(d, Exception)]
    print(f"connections {n} answered {len(ready)} errors {len(errors)}", flush=True)


asyncio.run(main())
