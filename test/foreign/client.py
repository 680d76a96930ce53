"""An independent client that knows only the wire contract (docs/protocol.md).

Usage: client.py ws://127.0.0.1:PORT  -- prints one line per check, exits non-zero on the first failure.
"""
import asyncio
import json
import sys
import time

import websockets


async def recv(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


async def main(base):
    async with websockets.connect(base + "/pubsub") as a, websockets.connect(base + "/pubsub") as b:
        assert (await recv(a))["event"] == "welcome"
        assert (await recv(b))["event"] == "welcome"
        await a.send(json.dumps({"action": "subscribe", "payload": {"channel": "py"}, "id": 1}))
        assert await recv(a) == {"event": "subscribed", "channel": "py", "id": 1}
        await b.send(json.dumps({"action": "publish", "payload": {"channel": "py", "message": {"from": "python"}}, "id": 2}))
        assert await recv(b) == {"event": "published", "channel": "py", "id": 2}
        assert await recv(a) == {"event": "message", "channel": "py", "message": {"from": "python"}}
        print("pubsub ok")
        for frame, code in [
            ("nope", "bad_json"),
            ('{"action":"subscribe"}', "bad_request"),
            ('{"action":"jump"}', "unknown_action"),
            ('{"action":"subscribe","payload":{"channel":"a b"}}', "bad_channel"),
            ('{"action":"subscribe","payload":{"channel":"user:x:y"}}', "forbidden"),
        ]:
            await a.send(frame)
            reply = await recv(a)
            assert reply["event"] == "error" and reply["code"] == code, (frame, reply)
        await a.send(b"\x01\x02")
        assert (await recv(a))["code"] == "binary_not_supported"
        print("errors ok")
        started = time.monotonic()
        for i in (1, 2, 3):
            await a.send(json.dumps({"action": "slow", "payload": {"ms": 500}, "id": i}))
        ids = sorted([(await recv(a))["id"] for _ in range(3)])
        took = time.monotonic() - started
        assert ids == [1, 2, 3] and took < 0.75, (ids, took)
        print("slow ok %.3f s" % took)
    async with websockets.connect(base + "/echo?rounds=2") as e:
        assert await recv(e) == {"event": "welcome"}
        for text in ("one", "two"):
            await e.send(text)
            assert await asyncio.wait_for(e.recv(), 5) == text
        assert await recv(e) == {"event": "goodbye"}
        try:
            await asyncio.wait_for(e.recv(), 5)
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd.code == 1000, closed
        print("echo ok")


asyncio.run(main(sys.argv[1]))
