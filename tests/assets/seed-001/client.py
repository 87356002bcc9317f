#!/usr/bin/env python3
"""Seed 001's events from python-socketio's client (Debian's python3-socketio), driven like client.js: JSON lines in
on stdin, JSON lines out on stdout (see client.js for the lines)."""
import json
import sys
import threading

import socketio

lock = threading.Lock()


def say(line):
    with lock:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


sio = None


def connect(command):
    global sio
    options = command.get("options") or {}
    sio = socketio.Client(reconnection=options.get("reconnection", True), reconnection_delay=0.2, reconnection_delay_max=1)

    @sio.event
    def connect():
        say({"kind": "connect", "transport": sio.transport()})

    @sio.event
    def connect_error(data):
        message = data.get("message") if isinstance(data, dict) else str(data)
        say({"kind": "connect_error", "message": message, "data": data.get("data") if isinstance(data, dict) else None})

    @sio.event
    def disconnect():
        say({"kind": "disconnect", "reason": "disconnected"})

    @sio.on("*")
    def any_event(event, data=None):
        say({"kind": "event", "event": event, "data": data})

    def run():
        try:
            sio.connect(command["url"], transports=options.get("transports"), auth=options.get("auth"), wait_timeout=10)
        except Exception as e:  # noqa: BLE001 - the test reads what went wrong
            say({"kind": "connect_error", "message": str(e), "data": None})

    threading.Thread(target=run, daemon=True).start()


def emit(command):
    if command.get("ack"):
        def answered(*args):
            say({"kind": "ack", "id": command["id"], "data": args[0] if args else None})
        sio.emit(command["event"], command.get("data"), callback=answered)
    else:
        sio.emit(command["event"], command.get("data"))


for text in sys.stdin:
    command = json.loads(text)
    op = command["op"]
    if op == "connect":
        connect(command)
    elif op == "emit":
        emit(command)
    elif op == "disconnect":
        sio.disconnect()
    else:
        say({"kind": "driver_error", "message": "unknown op " + op})
