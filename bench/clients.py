"""Upstream HTTP client comparison: aiohttp vs httpx, the same POST to the canned upstream,
16 concurrent callers, CPU per request of this process. Start the upstream first:
``python bench/canned_upstream.py --port 9911`` then ``python bench/clients.py``."""

import asyncio
import resource
import time

import aiohttp
import httpx
import orjson
import uvloop

URL = "http://127.0.0.1:9911/v1/chat/completions"
BODY = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 32})
H = {"content-type": "application/json", "authorization": "Bearer x"}
N = 4000
C = 16


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def run(name, make, post, close):
    client = await make()

    async def worker(n):
        for _ in range(n):
            await post(client)

    await asyncio.gather(*(worker(50) for _ in range(C)))  # warm-up
    c0 = cpu()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(N // C) for _ in range(C)))
    dt = time.perf_counter() - t0
    dc = cpu() - c0
    print(f"{name}: {N / dt:.0f} req/s, {dc / N * 1e6:.0f} us CPU/req")
    await close(client)


async def a_make():
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


async def a_post(s):
    async with s.post(URL, data=BODY, headers=H) as r:
        await r.read()


async def a_close(s):
    await s.close()


async def h_make():
    return httpx.AsyncClient(limits=httpx.Limits(max_connections=100, max_keepalive_connections=100))


async def h_post(c):
    r = await c.post(URL, content=BODY, headers=H)
    r.read()


async def h_close(c):
    await c.aclose()


async def main():
    for _ in range(2):
        await run("aiohttp", a_make, a_post, a_close)
        await run("httpx  ", h_make, h_post, h_close)


uvloop.run(main())
