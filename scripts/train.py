"""Train the DiT on latents of a trained autoencoder; rerun the same command to resume.

python scripts/train.py --config configs/shapes.py --workdir runs/shapes --config.train.autoencoder=runs/shapes_ae

Multi-host: run the same command on every host with --coordinator HOST:PORT
--num_processes N --process_id I (jax.distributed); each reads its own share of the data.
Without those flags, jax.distributed's cluster auto-detection (SLURM, Open MPI, Cloud TPU,
...) starts the processes' runtime where it applies; elsewhere the run is one process. If a
process dies, process 0 included, the others stop within --peer_timeout seconds, one line each;
rerun all to resume. (With --coordinator, process 0 runs jax.distributed's coordination service
in a process of its own; under auto-detection JAX runs it inside process 0, and if that process
dies JAX ends the others at once with its own message.)
"""

import jax
from absl import flags
from ml_collections import config_flags

import sora_lite
from sora_lite import cli, coordination, train_dit

config_flags.DEFINE_config_file("config", "configs/base.py", "Config file.")
flags.DEFINE_string("workdir", None, "Where checkpoints, metrics.jsonl and samples go.", required=True)
flags.DEFINE_string("coordinator", None, "HOST:PORT of process 0, for multi-process training.")
flags.DEFINE_integer("num_processes", None, "Number of processes (with --coordinator).")
flags.DEFINE_integer("process_id", None, "This process's index (with --coordinator).")
flags.DEFINE_integer("peer_timeout", 60, "Seconds without a heartbeat after which another process counts as "
                     "lost: then every process stops with one line naming it (rerun all to resume).")


def main(_):
    f = flags.FLAGS
    with coordination.processes(f.coordinator, f.num_processes, f.process_id, f.peer_timeout):
        sora_lite.enable_compilation_cache()
        result = train_dit.train(f.config, f.workdir)
    if jax.process_index() == 0:
        print(cli.eval_table(result) if result else f"trained {f.workdir} to step {f.config.train.steps} "
              "(not evaluated; scripts/evaluate.py scores it)")


if __name__ == "__main__":
    cli.run_script(main)
