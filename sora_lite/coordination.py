"""A run's processes: jax.distributed, a watcher that stops every process in one line when
another is lost, and the coordination service in a process of its own.

JAX runs its coordination service inside process 0, so when process 0 dies the others lose it
mid-call and JAX aborts them with its own fatal message. Here process 0 starts the service in a
small process of its own instead (`start`). At a run's end process 0 says so and the service
stops with it; when process 0 dies instead, the service serves on for the peer timeout and a
margin, so that every other process's watcher sees process 0's heartbeats stop and ends in one
line naming it, as it does for any other lost process.

    python -m sora_lite.coordination [::]:PORT NUM_PROCESSES PEER_TIMEOUT
"""

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time

from sora_lite import cli, validate


@contextlib.contextmanager
def processes(coordinator: str | None, num_processes: int | None, process_id: int | None, peer_timeout: int):
    """The run's processes (jax.distributed): the given coordinator, or a cluster's auto-detection
    (SLURM, Open MPI, Cloud TPU, ...); elsewhere one process. A process that stops (killed, its host
    gone) ends every other within about `peer_timeout` seconds with one line that names it, even
    while they wait at a checkpoint's barrier; on success all leave together."""
    import jax

    peer_timeout = validate.integer("--peer_timeout", peer_timeout, 1)
    # Recoverable: a peer's death is the watcher's to report, not a fatal abort of every process.
    jax.config.update("jax_enable_recoverability", True)
    bind = None
    if coordinator:
        host, _, port = coordinator.rpartition(":")
        if not (host and port.isdigit() and 1 <= int(port) <= 65535):  # else JAX waits 300 s, then aborts
            raise ValueError(f"--coordinator must be HOST:PORT with a port in 1..65535; got {coordinator!r}")
        if process_id == 0 and (num_processes or 1) > 1:
            # The service in a process of its own (`start`), so that process 0 can die like any
            # other; the one JAX starts here binds to a free local port and serves no one.
            start(int(port), num_processes, peer_timeout)
            bind = "127.0.0.1:0"
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id, heartbeat_timeout_seconds=peer_timeout,
                                   coordinator_bind_address=bind)
    except ValueError:  # "coordinator_address should be defined": no cluster here, one process
        if coordinator:
            raise
    if jax.process_count() == 1:
        yield
        return
    from jax._src import distributed  # the runtime client: its barrier and live-process list

    client, done = distributed.global_state.client, threading.Event()
    watcher = threading.Thread(target=_watch_peers, args=(client, done), daemon=True)
    watcher.start()
    yield
    client.wait_at_barrier("sora_lite_done", 3_600_000)
    done.set()
    # Joined before exit: a thread still inside the runtime's call when Python finalises aborts it.
    watcher.join()  # (process 0's returns once every other process has left)
    if jax.process_index() != 0:
        jax.distributed.shutdown()
    elif _HELPER is not None:  # (under a cluster's auto-detection JAX runs the service here)
        _HELPER.stdin.write("done\n")  # the service can stop now, with this process
        _HELPER.stdin.flush()


def _watch_peers(client, done: threading.Event):
    """Every second, the processes the runtime still hears from (its heartbeats); one missing, or
    the runtime itself gone, ends this process in one line. (The call returns once every live
    process has made it.) At the end, process 0's watcher waits for the others to leave."""
    import jax

    me, n = jax.process_index(), jax.process_count()

    def stop(name: str, why: str):  # a new line first: the progress bar's line is unfinished
        cli.exit_with(2, f"\n{os.path.basename(sys.argv[0])}: error: {_lost(name, why)}")

    while True:
        try:
            live = client.get_live_nodes(list(range(n)))
        except Exception:  # noqa: BLE001 - the service is gone: it lives as long as process 0
            if not done.is_set():
                stop("process 0", "the coordination service it started stopped")
            return
        if done.is_set() and (me != 0 or len(live) == 1):
            return
        lost = [i for i in range(n) if i not in live]
        if lost and not done.is_set():
            stop("process " + ", ".join(map(str, lost)), "no heartbeat for the peer timeout")
        time.sleep(0.1 if done.is_set() else 1)


def lost_process(error: Exception) -> str | None:
    """In a multi-process run, a collective that failed because a peer is gone, said as such."""
    import jax

    if not (jax.distributed.is_initialized() and jax.process_count() > 1):
        return None
    cause = " ".join(str(error).split())
    if not re.search(r"Gloo|[Cc]onnection (closed|reset|refused)|UNAVAILABLE|heartbeat", cause):
        return None
    name = f"process {1 - jax.process_index()}" if jax.process_count() == 2 else "another process"
    return _lost(name, cause[:160])


def _lost(name: str, why: str) -> str:
    """What this process says when it stops because `name` is gone."""
    import jax

    return (f"process {jax.process_index()} of {jax.process_count()} lost {name} ({why}): this process stops too; "
            "rerun every process with the same command to resume from the newest checkpoint")


_HELPER = None  # the service's process: stopped by this one's "done", or a grace period after its pipe closes


def _grace(peer_timeout: int) -> int:
    """Seconds the service serves on after process 0 died: the others' watchers see it go first."""
    return peer_timeout + 10


def start(port: int, num_processes: int, peer_timeout: int):
    """The service on `port`, in a new session (a terminal's Ctrl-C is for the trainers, which
    save a checkpoint through it). Returns once it serves."""
    global _HELPER
    # The port may still be served by an earlier run's service after its process 0 died (`main`);
    # gRPC would bind beside it (SO_REUSEPORT) and share the connections out between the two.
    wait = _grace(peer_timeout) + 5
    deadline = time.monotonic() + wait
    if _served(port):
        print(f"port {port} is in use, by an earlier run's service if its process 0 died: waiting up to {wait} s "
              "for it to stop", file=sys.stderr, flush=True)
    while _served(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"port {port} is in use by another program: pick another --coordinator port")
        time.sleep(0.5)
    _HELPER = subprocess.Popen([sys.executable, "-m", "sora_lite.coordination", f"[::]:{port}", str(num_processes),
                                str(peer_timeout)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, start_new_session=True, text=True)
    said = _HELPER.stdout.readline().strip()
    if said != "serving":
        raise RuntimeError(f"could not start jax.distributed's coordination service on port {port} "
                           f"({said or 'it exited'}): pick another --coordinator port")


def _served(port: int) -> bool:
    """Whether something on this host accepts connections on `port`."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def main():
    """The service's process (`start`): serve until process 0's pipe closes, for the grace period
    more unless process 0 said the run is done."""
    address, num_processes, peer_timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    from jax._src.lib import _jax  # the service jax.distributed.initialize starts in process 0

    try:
        service = _jax.get_distributed_runtime_service(address, num_processes, heartbeat_timeout=peer_timeout,
                                                       recoverable=True)
    except Exception as e:  # noqa: BLE001 - said to process 0, which raises it in one line
        print(" ".join(str(e).split())[:200], flush=True)
        return
    print("serving", flush=True)
    if sys.stdin.read() != "done\n":  # returns when process 0 has gone, at its end or killed
        time.sleep(_grace(peer_timeout))
    service.shutdown()
    os._exit(0)  # nothing else to tear down


if __name__ == "__main__":
    main()
