"""jax.distributed's coordination service in a process of its own, started by process 0.

JAX runs the service inside process 0, so when process 0 dies the others lose it mid-call and
JAX aborts them with its own fatal message. Here process 0 starts this small process instead
(`cli.processes`), which serves until process 0 has gone (its pipe closes), then shuts the
service down cleanly: every other process's watcher then sees the runtime gone and stops in
one line naming process 0, as it does for any other lost process.

    python -m sora_lite.coordination [::]:PORT NUM_PROCESSES PEER_TIMEOUT
"""

import os
import subprocess
import sys


_HELPER = None  # the service's process: kept until this one exits, whose closing pipe stops it


def start(coordinator: str, num_processes: int, peer_timeout: int):
    """The service at `coordinator`'s port, in a new session (a terminal's Ctrl-C is for the
    trainers, which save a checkpoint through it). Returns once it serves."""
    global _HELPER
    port = coordinator.rsplit(":", 1)[-1]
    _HELPER = subprocess.Popen([sys.executable, "-m", "sora_lite.coordination", f"[::]:{port}", str(num_processes),
                                str(peer_timeout)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, start_new_session=True, text=True)
    said = _HELPER.stdout.readline().strip()
    if said != "serving":
        raise RuntimeError(f"could not start jax.distributed's coordination service on port {port} "
                           f"({said or 'it exited'}): pick another --coordinator port")


def main():
    address, num_processes, peer_timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    from jax._src.lib import _jax  # the service jax.distributed.initialize starts in process 0

    try:
        service = _jax.get_distributed_runtime_service(address, num_processes, heartbeat_timeout=peer_timeout,
                                                       recoverable=True)
    except Exception as e:  # noqa: BLE001 - said to process 0, which raises it in one line
        print(" ".join(str(e).split())[:200], flush=True)
        return
    print("serving", flush=True)
    sys.stdin.read()  # returns when process 0 has gone, at its end or killed
    service.shutdown()
    os._exit(0)  # nothing else to tear down


if __name__ == "__main__":
    main()
