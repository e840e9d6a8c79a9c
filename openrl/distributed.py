"""Several processes and hosts on JAX's distributed runtime: starting it, and moving arrays between host and mesh.

Every process runs the same program. `initialize` (or the user's own
`jax.distributed.initialize()`) joins them; afterwards `jax.devices()` lists the devices of all
processes, and openrl shards populations, seeds and trials over them. Arrays then come in two
kinds: *global* ones, spread over devices of several processes, and *host* values (NumPy) that
each process holds whole. `replicate` and `shard` turn host values into global arrays without
the equality check `jax.device_put` makes across processes (which NaN fails); `to_host` reads a
global array back on every process (through `jax.experimental.multihost_utils` when no process
holds all of it). `is_main` picks the one process that writes files. `map_shards` runs a function
of batched members (population members, seeds) on each device's own members.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import zlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import PyTree

__all__ = [
    "DistributedConfig", "PeerError", "add_arguments", "check_same_everywhere", "config_from_args", "initialize",
    "initialize_from_args", "is_main", "map_shards", "mesh_over", "peer_errors", "replicate", "shard", "to_host",
    "to_local",
]


_PEER_FAILURES = ("Gloo", "heartbeat", "UNAVAILABLE", "DEADLINE_EXCEEDED", "Connection reset", "Connection refused",
                  "coordination service", "Barrier")
"""Words in the runtime's messages when another process is gone (JAX raises ValueError or JaxRuntimeError)."""

Function = TypeVar("Function", bound=Callable[..., Any])


class PeerError(RuntimeError):
    """Another process of a multi-process run died, or could not be reached in time."""


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
    """How this process joins a multi-process run; the fields mirror `jax.distributed.initialize`.

    - `coordinator` (`"HOST:PORT"` of process 0), `num_processes`, `process_id`: given together;
      or, with `auto`, any of them left out is detected by JAX (SLURM, Open MPI).
    - `initialization_timeout`: seconds to wait for every process to join.
    - `heartbeat_timeout`: seconds after which a silent process counts as dead; every other
      process then ends with an error instead of waiting for it.
    - `shutdown_timeout`: seconds a finishing process waits for the others to finish too.
    """

    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    auto: bool = False
    initialization_timeout: int = 300
    heartbeat_timeout: int = 60
    shutdown_timeout: int = 60

    def __post_init__(self):
        given = [name for name in ("coordinator", "num_processes", "process_id") if getattr(self, name) is not None]
        if given and len(given) < 3 and not self.auto:
            missing = sorted({"coordinator", "num_processes", "process_id"} - set(given))
            raise ValueError(f"{', '.join(missing)}: needed with {', '.join(given)} (or set auto to let JAX detect "
                             "them under SLURM or Open MPI)")
        if self.coordinator is not None:
            host, sep, port = self.coordinator.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"coordinator: expected HOST:PORT of process 0, e.g. 10.0.0.1:1234, "
                                 f"got {self.coordinator!r}")
        for name in ("num_processes", "initialization_timeout", "heartbeat_timeout", "shutdown_timeout"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if self.process_id is not None:
            if isinstance(self.process_id, bool) or not isinstance(self.process_id, int) or self.process_id < 0:
                raise ValueError(f"process_id: expected an int >= 0, got {self.process_id!r}")
            if self.num_processes is not None and self.process_id >= self.num_processes:
                raise ValueError(f"process_id: expected 0 to {self.num_processes - 1} for num_processes="
                                 f"{self.num_processes}, got {self.process_id}")

    @property
    def enabled(self) -> bool:
        """Whether this configuration starts the distributed runtime at all."""
        return self.auto or self.coordinator is not None


def initialize(config: DistributedConfig) -> None:
    """Join the run `config` describes (nothing when it is not `enabled`); call before any JAX computation.

    If `jax.distributed.initialize` was already called (by the user or an earlier call), the
    runtime is left as it is.
    """
    if not isinstance(config, DistributedConfig):
        raise TypeError(f"config: expected an openrl.distributed.DistributedConfig, got {config!r}")
    if not config.enabled or jax.distributed.is_initialized():
        return
    jax.distributed.initialize(
        coordinator_address=config.coordinator,
        num_processes=config.num_processes,
        process_id=config.process_id,
        initialization_timeout=config.initialization_timeout,
        heartbeat_timeout_seconds=config.heartbeat_timeout,
        shutdown_timeout_seconds=config.shutdown_timeout,
    )


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _is_peer_failure(error: BaseException) -> bool:
    return isinstance(error, (ValueError, RuntimeError)) and any(word in str(error) for word in _PEER_FAILURES)


def peer_errors(function: Function) -> Function:
    """Decorate a function so a lost peer in a multi-process run surfaces as a `PeerError` naming the cause."""

    @functools.wraps(function)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (ValueError, RuntimeError) as error:
            if jax.process_count() == 1 or isinstance(error, PeerError) or not _is_peer_failure(error):
                raise
            raise PeerError(
                f"process {jax.process_index()} of {jax.process_count()}: lost contact with another process of this "
                f"run, which probably died (see its log); every process stops. Restart them all (meta-training with "
                f"resume). Cause: {_first_line(error)}"
            ) from error

    return wrapped  # type: ignore[return-value]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the "distributed run" flags (`--coordinator`, `--num-processes`, `--process-id`, `--distributed`, timeouts)."""
    group = parser.add_argument_group(
        "distributed run", "run as one of several processes (see the Scaling out guide); every process gets "
                           "the same command and its own --process-id")
    group.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                       help="address of process 0, where JAX's coordination service listens")
    group.add_argument("--num-processes", type=int, default=None, metavar="N", help="processes in the run")
    group.add_argument("--process-id", type=int, default=None, metavar="I", help="this process, 0 to N-1")
    group.add_argument("--distributed", action="store_true",
                       help="start JAX's distributed runtime, detecting what is not given (SLURM, Open MPI)")
    group.add_argument("--init-timeout", type=int, default=DistributedConfig.initialization_timeout, metavar="S",
                       help="seconds to wait for all processes to join (default: %(default)s)")
    group.add_argument("--heartbeat-timeout", type=int, default=DistributedConfig.heartbeat_timeout, metavar="S",
                       help="seconds after which a silent process counts as dead and the run stops "
                            "(default: %(default)s)")


def config_from_args(args: argparse.Namespace) -> DistributedConfig:
    """The `DistributedConfig` of flags added by `add_arguments`, with errors naming the flags."""
    try:
        return DistributedConfig(coordinator=args.coordinator, num_processes=args.num_processes,
                                 process_id=args.process_id, auto=args.distributed,
                                 initialization_timeout=args.init_timeout, heartbeat_timeout=args.heartbeat_timeout)
    except ValueError as error:
        flags = {"coordinator": "--coordinator", "num_processes": "--num-processes", "process_id": "--process-id",
                 "set auto": "pass --distributed", "initialization_timeout": "--init-timeout",
                 "heartbeat_timeout": "--heartbeat-timeout"}
        message = str(error)
        for name, flag in flags.items():
            message = message.replace(name, flag)
        raise ValueError(message) from None


def initialize_from_args(args: argparse.Namespace) -> None:
    """`initialize` with the flags of `add_arguments` (checked first)."""
    initialize(config_from_args(args))


def is_main() -> bool:
    """Whether this is process 0, the one that writes logs, checkpoints' metadata, figures and results."""
    return jax.process_index() == 0


def replicate(tree: PyTree, mesh: Mesh) -> PyTree:
    """Every array leaf of `tree` (the same value in each process) as a global array with a copy on every device."""
    return shard(tree, mesh, PartitionSpec())


def shard(tree: PyTree, mesh: Mesh, spec: PartitionSpec) -> PyTree:
    """Every array leaf of `tree` (the whole value, the same in each process) laid out over `mesh` by `spec`."""
    sharding = NamedSharding(mesh, spec)

    def put(leaf: Any) -> Any:
        if not isinstance(leaf, (jax.Array, np.ndarray)):
            return leaf
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(put(jax.random.key_data(leaf)), impl=jax.random.key_impl(leaf))
        if jax.process_count() == 1:
            return jax.device_put(leaf, sharding)
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(put, tree)


def to_host(tree: PyTree) -> PyTree:
    """Every array leaf of `tree` as a NumPy array holding its whole value, on every process.

    With several processes every process must call this in the same order (it may gather).
    """

    def get(leaf: Any) -> Any:
        if not isinstance(leaf, jax.Array):
            return leaf
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(get(jax.random.key_data(leaf)), impl=jax.random.key_impl(leaf))
        if leaf.is_fully_addressable:
            return np.asarray(leaf)
        if leaf.is_fully_replicated:
            return np.asarray(leaf.addressable_data(0))
        return multihost_utils.process_allgather(leaf, tiled=True)

    return jax.tree.map(get, tree)


def to_local(tree: PyTree) -> PyTree:
    """`tree` with every array leaf as an ordinary array of this process (usable without the other processes)."""
    return jax.tree.map(lambda leaf: jnp.asarray(leaf) if isinstance(leaf, np.ndarray) else leaf, to_host(tree))


def check_same_everywhere(value: str, what: str) -> None:
    """Raise a clear error if `value` (a description of work to do) differs between processes."""
    if jax.process_count() == 1:
        return
    digest = np.uint32(zlib.crc32(value.encode()))
    digests = multihost_utils.process_allgather(digest)
    if len(set(digests.tolist())) > 1:
        raise RuntimeError(
            f"processes disagree about {what} (digests by process: {digests.tolist()}); every process must see the "
            "same output directory contents: use a directory on a file system all hosts share"
        )


def mesh_over(devices: Sequence[jax.Device], axis: str) -> Mesh:
    """A 1-D mesh named `axis` over `devices` (automatic sharding, as `jit` with `NamedSharding` expects)."""
    return Mesh(np.asarray(list(devices)), (axis,), axis_types=(jax.sharding.AxisType.Auto,))


def map_shards(fn: Function, mesh: Mesh) -> Function:
    """`fn` run by every device on its own share of the members, with `jax.shard_map` over `mesh`'s axis.

    Every array in `fn`'s arguments and results leads with the members' axis, whose size is a multiple
    of the mesh's; other leaves are passed through unchanged. On one device this is `fn` itself.

    Why not leave the split to `jit`'s partitioner: on CPU, a learned optimizer's per-parameter work
    is computed member by member (`openrl.optim.batching`), and picking one member out of an axis
    sharded over devices made every device fetch it: a meta-training generation on 2 devices took
    longer than on 1 (benchmarks/test_scaling.py, docs/benchmarks.md).
    """
    if mesh.size == 1:
        return fn
    spec = PartitionSpec(mesh.axis_names[0])

    @functools.wraps(fn)
    def mapped(*args: Any) -> Any:
        dynamic, static = eqx.partition(args, eqx.is_array)
        local = lambda dynamic: fn(*eqx.combine(dynamic, static))
        # check_vma=False: the training loops scan with carries that start out alike on every device.
        return jax.shard_map(local, mesh=mesh, in_specs=(spec,), out_specs=spec, check_vma=False)(dynamic)

    return mapped  # type: ignore[return-value]
