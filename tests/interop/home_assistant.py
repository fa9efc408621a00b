#!/usr/bin/env python3
"""Home Assistant's own ntfy client library against the real openpush binary.

Home Assistant's ntfy integration (``homeassistant/components/ntfy``) talks to the server
only through ``aiontfy`` (PyPI), used here unmodified and pinned
(``tests/interop/requirements-ha.txt``; it needs Python 3.12 or newer). The calls are the
integration's:

- setup: ``account()`` with the user's name and password, then ``generate_token("Home
  Assistant")`` (``POST /v1/account/token``), and from then on every call with
  ``Authorization: Bearer tk_…``; a wrong password must raise the library's
  ``NtfyUnauthorizedAuthenticationError`` (ntfy's error 40101), which starts
  re-authentication, and a topic of another user ``NtfyForbiddenAccessError`` (40301);
- the sensors' polls: ``account()`` (limits and stats) and ``version()`` (admin only:
  a user gets ``NtfyForbiddenAccessError``, which the integration tolerates);
- notify: ``publish(Message(topic, message, title, tags, priority))``;
- the event entity: ``subscribe([topic], callback)`` over ``/<topic>/ws``, after
  ``/<topic>/auth``; it must see the next message published;
- the ``ntfy.publish`` action with a ``sequence_id`` (an update of the notification), the
  ``ntfy.clear`` and ``ntfy.delete`` actions (``PUT /<topic>/<id>/clear``, ``DELETE
  /<topic>/<id>``, by a sequence id or a message's own id), and ``delay``: the event
  entity sees each update, the ``message_clear`` and ``message_delete`` events, and the
  delayed message once it is due, not before.

Usage: python3 tests/interop/home_assistant.py [path/to/openpush]. Talks to nothing but
127.0.0.1 and ends with "N passed, M failed" (exit 1 on a failure).
"""

import asyncio
import os
import sys
import time
import traceback

# Only loopback: keep any proxy settings of the environment away from our requests.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

from aiontfy import Event, Message, Ntfy  # noqa: E402
from aiontfy.exceptions import (  # noqa: E402
    NtfyForbiddenAccessError,
    NtfyUnauthorizedAuthenticationError,
)
from openpush_server import TIMEOUT, Server  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
USER, PASSWORD = "homeassistant", "ha-interop-pw"
OTHER, OTHER_PASSWORD = "ann", "ann-interop-pw"


async def expect(error, call):
    try:
        await call
    except error as e:
        return e
    raise AssertionError(f"expected {error.__name__}")


async def setup(url: str) -> str:
    """The integration's config flow: the account with the password, then a token."""
    async with Ntfy(url, username=USER, password="wrong") as ntfy:
        e = await expect(NtfyUnauthorizedAuthenticationError, ntfy.account())
        assert (e.code, e.http) == (40101, 401), vars(e)
    async with Ntfy(url, username=USER, password=PASSWORD) as ntfy:
        account = await ntfy.account()
        assert account.username == USER, account
        assert account.stats is not None and account.limits is not None, account
        token = await ntfy.generate_token("Home Assistant")
    assert token.token.startswith("tk_") and len(token.token) == 32, token
    assert token.label == "Home Assistant", token
    return token.token


async def polls(url: str, token: str):
    """The coordinators' polls, with the token."""
    async with Ntfy(url, token=token) as ntfy:
        account = await ntfy.account()
        assert account.username == USER, account
        assert [t.label for t in account.tokens] == ["Home Assistant"], account.tokens
        e = await expect(NtfyForbiddenAccessError, ntfy.version())
        assert e.code == 40301, vars(e)


async def notify_and_subscribe(url: str, token: str):
    """The event entity's subscription sees what the notify entity publishes."""
    got = asyncio.Queue()
    async with Ntfy(url, token=token) as ntfy:
        sent = await ntfy.publish(
            Message(topic="home", message="first", title="HA", tags=["house"], priority=4)
        )
        assert (sent.topic, sent.message, sent.title) == ("home", "first", "HA"), sent
        assert sent.tags == ["house"] and int(sent.priority) == 4, sent
        task = asyncio.create_task(ntfy.subscribe(["home"], got.put_nowait))
        try:
            opened = await asyncio.wait_for(got.get(), TIMEOUT)
            assert opened.event == "open", opened
            await ntfy.publish(Message(topic="home", message="Door open", title="Front door"))
            while True:
                n = await asyncio.wait_for(got.get(), TIMEOUT)
                if n.event == "message":
                    break
            assert (n.message, n.title, n.topic) == ("Door open", "Front door", "home"), n
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def next_event(got: asyncio.Queue, wait=TIMEOUT):
    """The next notification that is not a keepalive."""
    while True:
        n = await asyncio.wait_for(got.get(), wait)
        if n.event != Event.KEEPALIVE:
            return n


async def updates_clear_delete_and_delay(url: str, token: str):
    """The publish action with a sequence id, the clear and delete actions, and a delay,
    as the event entity's subscription sees them."""
    got = asyncio.Queue()
    async with Ntfy(url, token=token) as ntfy:
        task = asyncio.create_task(ntfy.subscribe(["chores"], got.put_nowait))
        try:
            assert (await next_event(got)).event == Event.OPEN
            first = await ntfy.publish(
                Message(topic="chores", message="Washer: 10 min left", sequence_id="washer")
            )
            assert first.sequence_id == "washer", first
            update = await ntfy.publish(
                Message(topic="chores", message="Washer: done", sequence_id="washer")
            )
            cleared = await ntfy.clear("chores", "washer")
            assert (cleared.event, cleared.sequence_id) == (Event.MESSAGE_CLEAR, "washer"), cleared
            deleted = await ntfy.delete("chores", "washer")
            assert (deleted.event, deleted.sequence_id) == (Event.MESSAGE_DELETE, "washer"), deleted
            seen = [await next_event(got) for _ in range(4)]
            assert [(n.event, n.sequence_id) for n in seen] == [
                (Event.MESSAGE, "washer"),
                (Event.MESSAGE, "washer"),
                (Event.MESSAGE_CLEAR, "washer"),
                (Event.MESSAGE_DELETE, "washer"),
            ], seen
            assert [n.id for n in seen] == [first.id, update.id, cleared.id, deleted.id], seen
            assert seen[1].message == "Washer: done", seen[1]

            # A notification published without a sequence id is deleted by its own id.
            plain = await ntfy.publish(Message(topic="chores", message="Bins"))
            assert plain.sequence_id is None, plain
            await ntfy.delete("chores", plain.id)
            assert (await next_event(got)).id == plain.id
            gone = await next_event(got)
            assert (gone.event, gone.sequence_id) == (Event.MESSAGE_DELETE, plain.id), gone

            # Delayed: answered at once with its time, sent when due, under that sequence.
            asked = time.time()
            later = await ntfy.publish(Message(topic="chores", message="Dinner", delay="2s"))
            assert later.time.timestamp() >= int(asked) + 2, later
            try:
                early = await next_event(got, wait=1.0)
                raise AssertionError(f"sent before its time: {early}")
            except TimeoutError:
                pass
            sent = await next_event(got)
            assert time.time() >= later.time.timestamp(), sent
            assert (sent.message, sent.sequence_id) == ("Dinner", later.id), sent
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def forbidden_topic(url: str, token: str):
    """A topic of another user: the repair issue's error."""
    async with Ntfy(url, username=OTHER, password=OTHER_PASSWORD) as ann:
        await ann.publish(Message(topic="anns", message="mine"))
    async with Ntfy(url, token=token) as ntfy:
        e = await expect(NtfyForbiddenAccessError, ntfy.publish(Message(topic="anns", message="x")))
        assert (e.code, e.http) == (40301, 403), vars(e)


def main() -> int:
    binary = (
        sys.argv[1]
        if len(sys.argv) > 1
        else os.environ.get("OPENPUSH_BIN", os.path.join(ROOT, "target", "debug", "openpush"))
    )
    assert os.access(binary, os.X_OK), f"no binary at {binary}: run cargo build"
    from importlib.metadata import version

    print(f"clients: aiontfy {version('aiontfy')}, aiohttp {version('aiohttp')}")
    server = Server(binary)
    passed = failed = 0
    try:
        server.cli("user", "add", OTHER, "--password-stdin", stdin=OTHER_PASSWORD + "\n")
        server.cli("user", "add", USER, "--password-stdin", stdin=PASSWORD + "\n")
        # Delays of seconds, not ntfy's minimum of 10.
        with open(server.config, "a") as f:
            f.write("min_delay_secs = 0\n")
        server.start()
        url = server.url
        token = asyncio.run(asyncio.wait_for(setup(url), 3 * TIMEOUT))
        passed += 1
        print("ok   home assistant: setup (account with the password, a token)")
        checks = [
            ("home assistant: account and version polls with the token", polls),
            ("home assistant: notify, and the event entity's subscription", notify_and_subscribe),
            (
                "home assistant: publish with a sequence id, clear, delete, delay",
                updates_clear_delete_and_delay,
            ),
            ("home assistant: another user's topic is 40301", forbidden_topic),
        ]
        for name, check in checks:
            started = time.monotonic()
            try:
                asyncio.run(asyncio.wait_for(check(url, token), 3 * TIMEOUT))
            except Exception:
                failed += 1
                print(f"FAIL {name}")
                traceback.print_exc(file=sys.stdout)
            else:
                passed += 1
                print(f"ok   {name} ({time.monotonic() - started:.2f} s)")
    except Exception:
        failed += 1
        print("FAIL setup")
        traceback.print_exc(file=sys.stdout)
    return server.finish(passed, failed)


if __name__ == "__main__":
    sys.exit(main())
