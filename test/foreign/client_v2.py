"""An independent client of version 2, written from docs/protocol.md alone (Identity, Channels,
History and recovery, Presence, POST /publish): it signs its own HS256 tokens with the standard library.

Usage: client_v2.py ws://127.0.0.1:PORT JWT_SECRET PUBLISH_KEY
  -- prints one line per check, exits non-zero on the first failure.
"""
import asyncio
import base64
import hashlib
import hmac
import json
import sys
import time
import urllib.request

import websockets


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(secret, claims, alg="HS256"):
    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    if alg == "none":
        return head + "." + body + "."
    signature = hmac.new(secret.encode(), (head + "." + body).encode(), hashlib.sha256).digest()
    return head + "." + body + "." + b64(signature)


async def recv(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


async def until(ws, event):
    """The next frame of this event; others (messages of other channels) are skipped."""
    while True:
        frame = await recv(ws)
        if frame["event"] == event:
            return frame


async def refused(url):
    """The HTTP status an upgrade was refused with (None when it was accepted)."""
    try:
        async with websockets.connect(url):
            return None
    except websockets.exceptions.InvalidStatusCode as error:  # websockets 10.x
        return error.status_code
    except getattr(websockets.exceptions, "InvalidStatus", ()) as error:  # websockets 11+
        return error.response.status_code


async def main(base, secret, publish_key):
    http = base.replace("ws://", "http://", 1)
    now = int(time.time())
    alice = token(secret, {"sub": "alice", "sid": "s-alice", "exp": now + 60})
    bob = token(secret, {"sub": "bob", "exp": now + 60})

    # Identity: refusals at the upgrade, 401 and no socket.
    assert await refused(base + "/pubsub?token=" + token("x" * 32 + "wrong", {"sub": "alice"})) == 401
    assert await refused(base + "/pubsub?token=" + token(secret, {"sub": "alice"}, alg="none")) == 401
    assert await refused(base + "/pubsub?token=" + token(secret, {"sub": "alice", "exp": now - 10})) == 401
    assert await refused(base + "/pubsub?token=not.a.jwt") == 401
    async with websockets.connect(base + "/pubsub?token=" + alice) as a, \
            websockets.connect(base + "/pubsub", extra_headers={"Authorization": "Bearer " + bob}) as b, \
            websockets.connect(base + "/pubsub") as anon:
        welcome = await recv(a)
        assert welcome["event"] == "welcome" and welcome["user"] == "alice" and welcome["session"] == "s-alice", welcome
        assert (await recv(b))["user"] == "bob"
        assert (await recv(anon))["user"] is None
        print("identity ok")

        # user: channels are their owner's; the server side publishes on them.
        await a.send(json.dumps({"action": "subscribe", "payload": {"channel": "user:alice:inbox"}, "id": 1}))
        assert await recv(a) == {"event": "subscribed", "channel": "user:alice:inbox", "id": 1}
        await b.send(json.dumps({"action": "subscribe", "payload": {"channel": "user:alice:inbox"}, "id": 2}))
        reply = await recv(b)
        assert reply["event"] == "error" and reply["code"] == "forbidden" and reply["id"] == 2, reply
        request = urllib.request.Request(
            http + "/publish", method="POST", headers={"Authorization": "Bearer " + publish_key},
            data=json.dumps({"channel": "user:alice:inbox", "message": {"for": "alice"}}).encode())
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 202
        got = await until(a, "message")
        assert got["channel"] == "user:alice:inbox" and got["message"] == {"for": "alice"}, got
        await a.send(json.dumps({"action": "refresh", "payload": {"token": token(secret, {"sub": "alice", "exp": now + 120})}, "id": 3}))
        assert await until(a, "refreshed") == {"event": "refreshed", "id": 3}
        await a.send(json.dumps({"action": "refresh", "payload": {"token": bob}, "id": 4}))
        reply = await until(a, "error")
        assert reply["code"] == "forbidden" and reply["id"] == 4, reply
        print("channels ok")

        # History: offsets and an epoch on every message; read back; recover with since.
        await a.send(json.dumps({"action": "subscribe", "payload": {"channel": "feed"}, "id": 5}))
        assert (await until(a, "subscribed"))["id"] == 5
        for n in range(1, 6):
            await b.send(json.dumps({"action": "publish", "payload": {"channel": "feed", "message": n}, "id": 10 + n}))
            assert (await until(b, "published"))["id"] == 10 + n
        seen = [await until(a, "message") for _ in range(5)]
        assert [m["message"] for m in seen] == [1, 2, 3, 4, 5], seen
        offsets = [m["offset"] for m in seen]
        assert offsets == list(range(offsets[0], offsets[0] + 5)), offsets
        epoch = seen[0]["epoch"]
        assert isinstance(epoch, str) and all(m["epoch"] == epoch for m in seen)
        await anon.send(json.dumps({"action": "history", "payload": {"channel": "feed", "limit": 3}, "id": 6}))
        history = await until(anon, "history")
        assert [m["message"] for m in history["messages"]] == [3, 4, 5] and history["epoch"] == epoch, history
        await anon.send(json.dumps({"action": "subscribe", "payload": {"channel": "feed", "since": {"offset": offsets[1], "epoch": epoch}}, "id": 7}))
        replay = [await recv(anon) for _ in range(4)]
        assert [m.get("message") for m in replay[:3]] == [3, 4, 5], replay
        assert replay[3] == {"event": "subscribed", "channel": "feed", "recovered": True, "id": 7}, replay
        await anon.send(json.dumps({"action": "unsubscribe", "payload": {"channel": "feed"}, "id": 8}))
        await until(anon, "unsubscribed")
        await anon.send(json.dumps({"action": "subscribe", "payload": {"channel": "feed", "since": {"offset": 1, "epoch": "another"}}, "id": 9}))
        assert await recv(anon) == {"event": "subscribed", "channel": "feed", "recovered": False, "id": 9}
        print("history ok")

        # Presence: join and leave events, and the member list.
        await a.send(json.dumps({"action": "subscribe", "payload": {"channel": "room", "join_leave": True}, "id": 20}))
        # The order of the ack and the asker's own join is not part of the contract.
        frames = {f["event"]: f for f in [await recv(a), await recv(a)]}
        assert frames["subscribed"]["id"] == 20, frames
        assert frames["join"]["channel"] == "room" and frames["join"]["member"]["user"] == "alice", frames
        await b.send(json.dumps({"action": "subscribe", "payload": {"channel": "room"}, "id": 21}))
        await until(b, "subscribed")
        join = await until(a, "join")
        assert join["member"]["user"] == "bob", join
        await a.send(json.dumps({"action": "presence", "payload": {"channel": "room"}, "id": 22}))
        members = (await until(a, "presence"))["members"]
        assert sorted(m["user"] for m in members) == ["alice", "bob"], members
        await b.close()
        leave = await until(a, "leave")
        assert leave["channel"] == "room" and leave["member"]["user"] == "bob", leave
        print("presence ok")


asyncio.run(main(*sys.argv[1:4]))
