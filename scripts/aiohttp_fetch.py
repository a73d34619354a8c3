#!/usr/bin/python3
"""The aiohttp pattern ringfetch fetch is compared with: one ClientSession, a Semaphore, gather.

    /usr/bin/python3 scripts/aiohttp_fetch.py URLFILE [CONCURRENCY] [TIMEOUT_S]

Fetches every non-blank line, reads each body, and prints one line per URL to stdout
(status or the exception's class name) in input order, then a count on stderr.
"""
import asyncio
import sys

import aiohttp


async def fetch_one(session, sem, url):
    async with sem:
        try:
            async with session.get(url, allow_redirects=False) as resp:
                await resp.read()
                return str(resp.status)
        except Exception as exc:  # a row for every failure, as the other clients give
            return type(exc).__name__


async def main(path, concurrency, timeout):
    with open(path) as f:
        urls = [line.strip() for line in f if line.strip()]
    sem = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:
        results = await asyncio.gather(*(fetch_one(session, sem, u) for u in urls))
    sys.stdout.write("\n".join(results) + "\n")
    sys.stderr.write(f"{len(results)} results\n")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 500,
                     float(sys.argv[3]) if len(sys.argv) > 3 else 30.0))
