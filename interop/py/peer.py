"""A libzmq peer (through pyzmq) for omq's security interop tests.

Runs one socket with the given mechanism, optionally with a ZAP handler in the same context, and
reports on stdout: "endpoint EP" once bound or connected, "zap STATUS" for each ZAP decision,
"ok N" once it received N well-formed messages, "sent N" once it sent them. Exits when stdin
closes (the test is done with it) or after --timeout seconds.
"""

import argparse
import sys
import threading

import zmq
from zmq.utils import z85


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--type", required=True)
    p.add_argument("--bind")
    p.add_argument("--connect")
    p.add_argument("--mech", default="null")
    p.add_argument("--user", default="")
    p.add_argument("--password", default="")
    p.add_argument("--secret", default="")
    p.add_argument("--server-key", default="")
    p.add_argument("--zap", default="none", help="none, or a user:password / Z85 key to accept")
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--subscribe", default="")
    p.add_argument("--heartbeat", action="store_true")
    p.add_argument("--timeout", type=float, default=20)
    a = p.parse_args()

    ctx = zmq.Context()
    if a.zap != "none":
        zap = ctx.socket(zmq.REP)
        zap.bind("inproc://zeromq.zap.01")
        threading.Thread(target=zap_handler, args=(zap, a.zap), daemon=True).start()

    s = ctx.socket(getattr(zmq, a.type))
    s.linger = 1000
    s.rcvtimeo = int(a.timeout * 1000)
    s.sndtimeo = int(a.timeout * 1000)
    if a.heartbeat:
        s.heartbeat_ivl = 100
        s.heartbeat_timeout = 3000
    if a.mech == "plain-server":
        s.plain_server = True
    elif a.mech == "plain-client":
        s.plain_username = a.user.encode()
        s.plain_password = a.password.encode()
    elif a.mech.startswith("curve"):
        secret = a.secret.encode()
        s.curve_secretkey = secret
        s.curve_publickey = zmq.curve_public(secret)
        if a.mech == "curve-server":
            s.curve_server = True
        else:
            s.curve_serverkey = a.server_key.encode()
    if a.type == "SUB":
        s.setsockopt(zmq.SUBSCRIBE, a.subscribe.encode())
    if a.bind:
        s.bind(a.bind)
        say("endpoint", s.getsockopt(zmq.LAST_ENDPOINT).decode())
    else:
        s.connect(a.connect)
        say("endpoint", a.connect)

    if a.count:
        if a.type in ("PUSH", "REQ", "PUB"):
            for i in range(a.count):
                s.send_multipart([b"msg", str(i).encode()])
                if a.type == "REQ":
                    reply = s.recv_multipart()
                    if reply != [b"msg", str(i).encode()]:
                        say("bad", repr(reply))
                        return 1
            say("sent", a.count)
        else:
            got = 0
            while got < a.count:
                frames = s.recv_multipart()
                if a.type == "REP":
                    s.send_multipart(frames)
                elif frames[0] == b"x":
                    say("bad", "a message the subscription excludes")
                    return 1
                got += 1
            say("ok", got)
    sys.stdin.read()
    return 0


def zap_handler(zap, accept):
    while True:
        try:
            frames = zap.recv_multipart()
        except zmq.ZMQError:
            return
        version, request_id, domain, address, identity, mechanism = frames[:6]
        credentials = frames[6:]
        if mechanism == b"PLAIN":
            ok = b":".join(credentials) == accept.encode()
        elif mechanism == b"CURVE":
            ok = z85.encode(credentials[0]) == accept.encode()
        else:
            ok = True
        status = b"200" if ok else b"400"
        say("zap", status.decode())
        zap.send_multipart([version, request_id, status, b"OK" if ok else b"denied", b"user-" + mechanism.lower(), b""])


def say(*words):
    print(*words, flush=True)


if __name__ == "__main__":
    sys.exit(main())
