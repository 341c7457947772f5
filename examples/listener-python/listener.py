#!/usr/bin/python3
"""Listens for runtime_sweeper events and prints each one exactly once, in order.

Every event becomes a JSON line {"id","type","workspace_id"} on stdout.  After
every (re)connect the listener first catches up through
runtime_sweeper.events_since(), so events sent while it was disconnected (server
restart, network loss, listener restart with --state) are not lost; ids it has
already handled are skipped.

    listener.py [--dsn CONNINFO] [--channel NAME] [--state FILE] [--max-seconds N]

Connection settings come from --dsn ("host=... dbname=..." or a URI) or the PG*
environment variables.  Needs psycopg 3 (Debian: python3-psycopg).
"""
import argparse
import collections
import json
import os
import select
import signal
import socket
import sys
import time

import psycopg
from psycopg import sql

BATCH = 1000  # rows per events_since() call
MIN_DELAY, MAX_DELAY = 0.1, 2.0  # reconnect back-off, seconds
KEEPALIVE = 5.0  # idle seconds between liveness checks of the connection


def log(msg):
    print(f"listener: {msg}", file=sys.stderr, flush=True)


class Listener:
    def __init__(self, args):
        self.args = args
        self.last_id = 0  # the id of the last event handled
        if args.state and os.path.exists(args.state):
            with open(args.state) as f:
                self.last_id = int(f.read().strip() or 0)
        self.deadline = time.monotonic() + (args.max_seconds or float("inf"))
        self.stopping = False
        # SIGTERM/SIGINT set the flag and wake up select() through this socket.
        self.wakeup, self.wakeup_w = socket.socketpair()
        self.wakeup_w.setblocking(False)
        signal.set_wakeup_fd(self.wakeup_w.fileno())
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.stop)

    def stop(self, *_):
        self.stopping = True

    def done(self):
        return self.stopping or time.monotonic() >= self.deadline

    def wait(self, conn, seconds):
        """Waits until conn has input, a signal arrives or seconds pass."""
        seconds = min(seconds, self.deadline - time.monotonic())
        if self.done() or seconds <= 0:
            return False
        ready, _, _ = select.select([self.wakeup] + ([conn] if conn else []), [], [], seconds)
        if self.wakeup in ready:
            self.wakeup.recv(64)
        return conn in ready

    def handle(self, event_id, event):
        """Prints one event and remembers its id (None: the event log is off)."""
        line = {"id": event_id, "type": event.get("type"), "workspace_id": event.get("workspace_id")}
        print(json.dumps(line, separators=(",", ":")), flush=True)
        if event_id is None:
            return
        self.last_id = event_id
        if self.args.state:
            with open(self.args.state + ".tmp", "w") as f:
                f.write(f"{event_id}\n")
            os.replace(self.args.state + ".tmp", self.args.state)

    def catch_up(self, conn):
        """Handles every logged event after last_id; returns how many there were."""
        n = 0
        while True:
            rows = conn.execute(
                "SELECT id, channel, event FROM runtime_sweeper.events_since(%s, %s)",
                (self.last_id, BATCH)).fetchall()
            for event_id, channel, event in rows:
                if channel == self.args.channel:
                    self.handle(event_id, event)
                    n += 1
                else:
                    self.last_id = event_id
            if len(rows) < BATCH:
                return n

    def on_notification(self, conn, payload):
        """One notification: its envelope starts with the event log id (event_log = on)."""
        event = json.loads(payload)
        event_id = event.get("id")
        if event_id is None:  # event_log is off: no catch-up possible
            return self.handle(None, event)
        if event_id > self.last_id + 1:  # something is missing (or an unused id)
            self.catch_up(conn)
        if event_id > self.last_id:  # else handled already (by a catch-up)
            self.handle(event_id, event)

    def session(self):
        """One connection: LISTEN, catch up, then follow notifications until it
        dies or we stop.  Returns whether it got as far as listening."""
        conn = None
        listening = False
        try:
            conn = psycopg.connect(self.args.dsn, autocommit=True, connect_timeout=5)
            # Notifications arriving during any query (the catch-up too) land
            # here; the SELECT 1 below fetches those that arrive while idle.
            inbox = collections.deque()
            conn.add_notify_handler(lambda n: inbox.append(n.payload))
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.args.channel)))
            listening = True
            log(f"connected, caught up {self.catch_up(conn)} events (last id {self.last_id})")
            while not self.done():
                if inbox:
                    self.on_notification(conn, inbox.popleft())
                    continue
                self.wait(conn, KEEPALIVE)
                if not self.done():
                    conn.execute("SELECT 1")  # also tells whether the server is still there
        except psycopg.Error as e:
            if not self.done():
                log("error: " + " ".join(str(e).split()))
        finally:
            if conn is not None:
                conn.close()
        return listening

    def run(self):
        delay = MIN_DELAY
        while not self.done():
            if self.session():
                delay = MIN_DELAY
            if self.done():
                break
            log(f"reconnecting in {int(delay * 1000)} ms")
            self.wait(None, delay)
            delay = min(delay * 2, MAX_DELAY)
        log(f"stopped at id {self.last_id}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default="", help="libpq conninfo (default: PG* variables)")
    parser.add_argument("--channel", default="runtime_sweeper")
    parser.add_argument("--state", help="file keeping the last handled id across restarts")
    parser.add_argument("--max-seconds", type=float, help="exit after this many seconds")
    Listener(parser.parse_args()).run()


if __name__ == "__main__":
    main()
