#!/usr/bin/env python3
"""Admin helper for scripts/mongod (not meant to be called directly).

Runs inside the venv that `scripts/mongod install` creates (pinned pymongo).
Every wait here has a deadline; every failure exits non-zero with a message
on stderr that starts with "mongod_admin:".

Subcommands:
  spawn CMDFILE LOGFILE PIDFILE
      Start the NUL-separated argv in CMDFILE in a new session (setsid), with
      stdin=/dev/null, stdout+stderr appended to LOGFILE and every other fd
      closed; write the exact child pid to PIDFILE and print it.
  wait-hello --port P [--pid PID] --timeout S
      Poll until the member answers `hello` (directConnection).
  ensure-set --name N --ports P1,P2 [--priorities 2,1] [--pids X,Y]
             [--user U --password PW] [--election-timeout-ms MS] --timeout S
      Wait for every member, replSetInitiate if no member has a config yet,
      wait for a primary, create the admin user through the localhost
      exception if needed, and wait until a w:majority insert succeeds.
  shutdown --port P [--user U --password PW]
      Send {shutdown: 1, force: true, timeoutSecs: 1}.
  status SET:PORT:PID ...
      Print one line per member (PID "-" = not running).
"""

import argparse
import datetime
import os
import subprocess
import sys
import time

HOST = "127.0.0.1"
SCRATCH_DB = "mongowire_scratch"


def die(msg):
    print(f"mongod_admin: {msg}", file=sys.stderr)
    sys.exit(1)


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    if not pid:
        return True  # unknown pid: cannot tell, assume alive
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return False
    # state is the first field after the ")" that closes the comm field
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


# --------------------------------------------------------------------------
# spawn (stdlib only, pymongo not needed)
# --------------------------------------------------------------------------


def cmd_spawn(args):
    with open(args.cmdfile, "rb") as f:
        raw = f.read()
    argv = [a.decode() for a in raw.split(b"\0") if a]
    if not argv:
        die(f"empty command file {args.cmdfile}")
    log = open(args.logfile, "ab")
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        close_fds=True,
        start_new_session=True,
        cwd=os.path.dirname(os.path.abspath(args.pidfile)),
    )
    tmp = args.pidfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{proc.pid}\n")
    os.replace(tmp, args.pidfile)
    print(proc.pid)
    # Do not wait: the child is reparented to init when we exit.


# --------------------------------------------------------------------------
# pymongo based commands
# --------------------------------------------------------------------------


def pm():
    try:
        import pymongo  # noqa: F401
        import pymongo.errors  # noqa: F401
    except ImportError:
        die("pymongo is not installed in this interpreter; run `scripts/mongod install`")
    return sys.modules["pymongo"]


def direct(port, user=None, password=None, timeout_ms=2000):
    pymongo = pm()
    kw = dict(
        directConnection=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=30000,
        appname="mongowire-admin",
    )
    if user:
        kw.update(username=user, password=password, authSource="admin")
    return pymongo.MongoClient(HOST, port, **kw)


_clients = {}


def hello(port, timeout_ms=2000):
    """hello through a cached unauthenticated direct client (one per port,
    so that polling does not open a new connection pool every time)."""
    c = _clients.get(port)
    if c is None:
        c = _clients[port] = direct(port, timeout_ms=timeout_ms)
    return c.admin.command("hello")


def wait_hello(port, pid, deadline):
    errors = pm().errors
    last = None
    while True:
        if not pid_alive(pid):
            die(f"mongod on port {port} (pid {pid}) exited during startup")
        try:
            return hello(port, timeout_ms=1000)
        except errors.PyMongoError as e:  # refused / not yet listening
            last = e
        if time.monotonic() > deadline:
            die(f"port {port} did not answer hello in time (last error: {last})")
        time.sleep(0.2)


def cmd_wait_hello(args):
    deadline = time.monotonic() + args.timeout
    t0 = time.monotonic()
    wait_hello(args.port, args.pid, deadline)
    print(f"port {args.port} answers hello after {time.monotonic() - t0:.1f}s")


def find_primary(ports, pids, deadline, what, step_up=False):
    """Wait until a member is writable primary and return its port.

    With step_up, if no member knows of any primary, ask the first member
    (the highest priority one) to run an election now with replSetStepUp
    instead of waiting for electionTimeoutMillis (10 s) to expire; this is
    what happens after replSetInitiate of a multi-member set and after a
    restart of all members.
    """
    errors = pm().errors
    next_step_up = time.monotonic() + 1.0
    while True:
        known_primary = False
        for port, pid in zip(ports, pids):
            if not pid_alive(pid):
                die(f"mongod on port {port} (pid {pid}) exited while waiting for {what}")
            try:
                h = hello(port, timeout_ms=1000)
            except errors.PyMongoError:
                continue
            if h.get("isWritablePrimary"):
                return port
            known_primary = known_primary or bool(h.get("primary"))
        if time.monotonic() > deadline:
            die(f"no primary among ports {ports} in time ({what})")
        if step_up and not known_primary and time.monotonic() > next_step_up:
            next_step_up = time.monotonic() + 2.0
            try:
                c = _clients.get(ports[0]) or direct(ports[0])
                c.admin.command("replSetStepUp")
                print(f"{HOST}:{ports[0]}: replSetStepUp accepted")
            except errors.PyMongoError:
                pass  # not electable yet (still in STARTUP2, no votes...); retry
        time.sleep(0.2)


def ensure_user(port, user, password):
    """Make sure `user` can log in; create it via the localhost exception."""
    errors = pm().errors
    c = direct(port, user, password)
    try:
        c.admin.command("ping")
        return False
    except errors.OperationFailure as e:
        if e.code != 18:  # AuthenticationFailed
            raise
    finally:
        c.close()
    anon = direct(port)
    try:
        anon.admin.command(
            "createUser",
            user,
            pwd=password,
            roles=[{"role": "root", "db": "admin"}],
            mechanisms=["SCRAM-SHA-1", "SCRAM-SHA-256"],
            writeConcern={"w": "majority", "wtimeout": 60000},
        )
    except errors.OperationFailure as e:
        die(
            f"cannot create user {user!r} on port {port} through the localhost "
            f"exception ({e}); other users probably exist already -- wipe the set "
            f"with `scripts/mongod reset auth`"
        )
    finally:
        anon.close()
    return True


def cmd_ensure_set(args):
    pymongo = pm()
    errors = pymongo.errors
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    ports = [int(p) for p in args.ports.split(",")]
    pids = [int(p) if p not in ("", "-") else None for p in (args.pids or "").split(",")]
    pids += [None] * (len(ports) - len(pids))
    prios = [float(p) for p in args.priorities.split(",")] if args.priorities else [1.0] * len(ports)

    hellos = {p: wait_hello(p, pid, deadline) for p, pid in zip(ports, pids)}
    t_up = time.monotonic() - t0
    names = {h.get("setName") for h in hellos.values() if h.get("setName")}
    if names - {args.name}:
        die(f"ports {ports} belong to replica set(s) {sorted(names)}, expected {args.name!r}")
    if not names:
        cfg = {
            "_id": args.name,
            "members": [
                {"_id": i, "host": f"{HOST}:{p}", "priority": pr}
                for i, (p, pr) in enumerate(zip(ports, prios))
            ],
        }
        if args.election_timeout_ms:
            cfg["settings"] = {"electionTimeoutMillis": args.election_timeout_ms}
        while True:
            c = direct(ports[0])
            try:
                t = time.monotonic()
                c.admin.command("replSetInitiate", cfg)
                print(f"{args.name}: replSetInitiate took {time.monotonic() - t:.1f}s")
                break
            except errors.OperationFailure as e:
                if e.code == 23:  # AlreadyInitialized (raced with ourselves?)
                    break
                if time.monotonic() > deadline:
                    die(f"replSetInitiate for {args.name} failed: {e}")
            except errors.PyMongoError as e:
                if time.monotonic() > deadline:
                    die(f"replSetInitiate for {args.name} failed: {e}")
            finally:
                c.close()
            time.sleep(0.5)

    primary = find_primary(ports, pids, deadline, "election", step_up=len(ports) > 1)
    if args.user and ensure_user(primary, args.user, args.password):
        print(f"{args.name}: created user {args.user!r} on {HOST}:{primary}")

    seeds = ",".join(f"{HOST}:{p}" for p in ports)
    kw = dict(
        replicaSet=args.name,
        serverSelectionTimeoutMS=2000,
        connectTimeoutMS=2000,
        socketTimeoutMS=30000,
        appname="mongowire-admin",
    )
    if args.user:
        kw.update(username=args.user, password=args.password, authSource="admin")
    last = None
    while True:
        client = pymongo.MongoClient(f"mongodb://{seeds}/", **kw)
        try:
            wc = pymongo.WriteConcern(w="majority", wtimeout=10000)
            coll = client[SCRATCH_DB].get_collection("startup", write_concern=wc)
            coll.insert_one({"at": datetime.datetime.now(datetime.timezone.utc)})
            break
        except errors.PyMongoError as e:
            last = e
        finally:
            client.close()
        for port, pid in zip(ports, pids):
            if not pid_alive(pid):
                die(f"mongod on port {port} (pid {pid}) exited while waiting for a writable primary")
        if time.monotonic() > deadline:
            die(f"{args.name}: no w:majority write succeeded in time (last error: {last})")
        time.sleep(0.3)
    primary = find_primary(ports, pids, deadline, "primary lookup")
    print(
        f"{args.name}: writable (w:majority) primary {HOST}:{primary}; "
        f"members up after {t_up:.1f}s, ready after {time.monotonic() - t0:.1f}s"
    )


def cmd_shutdown(args):
    errors = pm().errors
    attempts = [(args.user, args.password)] if args.user else []
    attempts.append((None, None))
    last = None
    for user, password in attempts:
        c = direct(args.port, user, password, timeout_ms=3000)
        try:
            # timeoutSecs bounds the quiesce period that members of a
            # multi-node set otherwise spend (15 s) before shutting down.
            c.admin.command("shutdown", 1, force=True, timeoutSecs=1)
            return  # normally not reached: the server closes the connection
        except errors.AutoReconnect:
            return  # connection closed by the shutting down server: success
        except errors.OperationFailure as e:
            last = e
            if e.code in (18, 13):  # AuthenticationFailed / Unauthorized
                continue
            break
        except errors.PyMongoError as e:
            last = e
            break
        finally:
            c.close()
    die(f"shutdown of port {args.port} failed: {last}")


def cmd_status(args):
    errors = pm().errors
    fmt = "{:<7} {:<6} {:<8} {:<10} {}"
    print(fmt.format("SET", "PORT", "PID", "STATE", "DETAILS"))
    for entry in args.members:
        set_, port, pid = entry.split(":")
        port = int(port)
        if pid == "-":
            print(fmt.format(set_, port, "-", "stopped", ""))
            continue
        if pid == "foreign":
            print(fmt.format(set_, port, "-", "FOREIGN", "port in use by a process this script did not start"))
            continue
        try:
            h = hello(port, timeout_ms=1500)
        except errors.PyMongoError as e:
            print(fmt.format(set_, port, pid, "NO-ANSWER", str(e)[:80]))
            continue
        if h.get("isWritablePrimary"):
            state = "PRIMARY"
        elif h.get("secondary"):
            state = "SECONDARY"
        elif h.get("arbiterOnly"):
            state = "ARBITER"
        elif h.get("isreplicaset") and not h.get("setName"):
            state = "NO-CONFIG"
        else:
            state = "OTHER"
        details = f"set={h.get('setName', '-')} primary={h.get('primary', '-')}"
        print(fmt.format(set_, port, pid, state, details))


def main():
    ap = argparse.ArgumentParser(prog="mongod_admin.py")
    sub = ap.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("spawn")
    s.add_argument("cmdfile")
    s.add_argument("logfile")
    s.add_argument("pidfile")
    s.set_defaults(func=cmd_spawn)

    s = sub.add_parser("wait-hello")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--pid", type=int)
    s.add_argument("--timeout", type=float, required=True)
    s.set_defaults(func=cmd_wait_hello)

    s = sub.add_parser("ensure-set")
    s.add_argument("--name", required=True)
    s.add_argument("--ports", required=True)
    s.add_argument("--pids")
    s.add_argument("--priorities")
    s.add_argument("--user")
    s.add_argument("--password")
    s.add_argument("--election-timeout-ms", type=int)
    s.add_argument("--timeout", type=float, required=True)
    s.set_defaults(func=cmd_ensure_set)

    s = sub.add_parser("shutdown")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--user")
    s.add_argument("--password")
    s.set_defaults(func=cmd_shutdown)

    s = sub.add_parser("status")
    s.add_argument("members", nargs="*")
    s.set_defaults(func=cmd_status)

    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
