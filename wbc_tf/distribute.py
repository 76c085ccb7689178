"""Distribution strategies: which one, on which devices, how a global batch is split, who writes.

``RunOptions.strategy`` (``--strategy``) picks one of:

* ``'default'``: the default strategy, one device (the first GPU, else the CPU);
* ``'mirrored'``: `tf.distribute.MirroredStrategy` over every visible GPU of this machine;
* ``'multiworker'``: `tf.distribute.MultiWorkerMirroredStrategy`, one process per machine (or per
  group of GPUs), the cluster and this process's place in it read from the ``TF_CONFIG``
  environment variable; collectives by ``CommunicationOptions(AUTO)`` (NCCL on GPUs, ring on CPUs).

``TF_CONFIG`` set with another strategy: a warning (that process trains alone). A multi-worker
strategy must exist before TensorFlow runs its first op in the process (a TF requirement: the
collective ops are configured at start-up), so the trainer creates it before anything else.

**Global batch.** ``batch_size`` is the global batch. Batch ``t`` of `wbc_tf.data` is split in
rows: replica ``r`` of ``R`` gets rows ``[r·b, (r+1)·b)``, ``b = B / R``, replicas numbered worker
after worker (`distribute_batches`, `replica_rows`). So every step trains on the same images, whatever the
number of devices and workers; each worker decodes the whole global batch and keeps its rows.

**Who writes.** Every worker runs the same code, writes included (a save can read variables that
need all workers, and code that is the same everywhere cannot deadlock on a collective): the chief
(``worker 0``: task ``chief``, or ``worker`` 0 when there is no chief) writes into the run folder,
and every other worker into its own temporary folder, removed at the end (`write_dir`; TF's
multi-worker checkpointing guide). Everything a run writes goes there: ``config.json``,
checkpoints, weight exports, samples, TensorBoard logs, and the ``--no-resume`` move of old
checkpoints. Reading (resume) is from the run folder on every worker, so the run folder must be
on storage every worker sees; `check_same_everywhere` stops a run whose workers restored
different checkpoints. Unlike the guide, which puts ``workertemp_<task>`` inside the target
folder, the temporary folder is under the system's temp directory: the run folder holds only the
chief's files, even after a worker is killed.

Example::

    strategy = make_strategy("multiworker")      # first thing in the process
    log.info("%s", describe(strategy))
    with write_dir("runs/exp1", strategy) as out:
        ...                                      # save checkpoints, weights, logs under out
"""

import contextlib
import functools
import json
import logging
import os
import shutil
import tempfile

import tensorflow as tf

from wbc_tf.config import Strategy, choices

log = logging.getLogger(__name__)


class DistributeError(ValueError):
    """The workers cannot train together: a malformed ``TF_CONFIG``, or workers that disagree."""

STRATEGIES = choices(Strategy)                         # 'default', 'mirrored', 'multiworker'
TF_CONFIG = "TF_CONFIG"
_EXAMPLE = '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
_NAMES = {"_DefaultDistributionStrategy": "default strategy",
          "CollectiveAllReduceStrategy": "MultiWorkerMirroredStrategy"}     # class name -> API name


def _tf_config():
    """``TF_CONFIG`` parsed, or None when unset or empty.

    Raises:
        DistributeError: not JSON, or without a ``cluster`` of ``chief``/``worker`` tasks and this
            process's ``task`` (type and index) in it.
    """
    text = os.environ.get(TF_CONFIG, "").strip()
    if not text:
        return None
    try:
        spec = json.loads(text)
    except ValueError as e:
        raise DistributeError(f"{TF_CONFIG} is not valid JSON ({e}): {text[:200]}") from None
    cluster = spec.get("cluster") if isinstance(spec, dict) else None
    task = spec.get("task") if isinstance(spec, dict) else None
    if not isinstance(cluster, dict) or not any(cluster.get(job) for job in ("chief", "worker")):
        raise DistributeError(f"{TF_CONFIG} needs a 'cluster' with 'worker' (and optionally 'chief') addresses, "
                         f"e.g. {_EXAMPLE}; got {text[:200]}")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise DistributeError(f"{TF_CONFIG} needs this process's 'task' (type and index), e.g. {_EXAMPLE}; "
                         f"got {text[:200]}")
    jobs = cluster.get(task["type"])
    if not isinstance(jobs, list) or not isinstance(task["index"], int) or not 0 <= task["index"] < len(jobs):
        raise DistributeError(f"{TF_CONFIG}: task {task} is not in the cluster {cluster}")
    return spec


def make_strategy(name):
    """The `tf.distribute.Strategy` for ``RunOptions.strategy``.

    Args:
        name: ``'default'``, ``'mirrored'`` or ``'multiworker'``.

    Raises:
        ValueError: an unknown name.
        DistributeError: a malformed ``TF_CONFIG`` with ``'multiworker'``.
        RuntimeError: ``'multiworker'`` after TensorFlow already ran an op in this process.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy: {name!r} not accepted; choose from {', '.join(STRATEGIES)}")
    if name != "multiworker":
        if os.environ.get(TF_CONFIG, "").strip():
            log.warning("%s is set, but the strategy is %r: this process trains alone and ignores the "
                        "cluster; pass --strategy multiworker to train with the other workers",
                        TF_CONFIG, name)
        return tf.distribute.get_strategy() if name == "default" else tf.distribute.MirroredStrategy()
    if _tf_config() is None:
        log.warning("--strategy multiworker without %s: one worker, all devices of this machine "
                    "(what --strategy mirrored does)", TF_CONFIG)
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.AUTO)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except RuntimeError as e:
        if "startup" not in str(e):
            raise
        raise RuntimeError("--strategy multiworker: MultiWorkerMirroredStrategy must be created before "
                           "TensorFlow runs any op in this process; create the strategy (or the "
                           "Trainer) first") from e


def _cluster(strategy):
    """``(task_type, task_id, cluster dict)`` of a multi-worker strategy, or None."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return None
    cluster = resolver.cluster_spec().as_dict()
    if not cluster:
        return None
    return resolver.task_type, resolver.task_id, cluster


def worker_index(strategy):
    """``(index, count)`` of this worker: the chief is 0; a single process is ``(0, 1)``."""
    info = _cluster(strategy)
    if info is None:
        return 0, 1
    task_type, task_id, cluster = info
    chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
    index = task_id if task_type == "chief" else chiefs + task_id
    return index, chiefs + workers


def is_chief(strategy):
    """True for the one process that writes the run folder (every single-process strategy)."""
    return bool(strategy.extended.should_checkpoint)


def _devices(strategy):
    try:
        return list(strategy.extended.worker_devices)
    except RuntimeError:      # the default strategy: where TF places ops without a device scope
        gpus = tf.config.list_logical_devices("GPU")
        return [(gpus or tf.config.list_logical_devices("CPU"))[0].name]


def describe(strategy):
    """One line: the strategy, this worker's place, the replica count and this worker's devices."""
    index, count = worker_index(strategy)
    name = _NAMES.get(type(strategy).__name__, type(strategy).__name__)
    chief = "chief: writes the run folder" if is_chief(strategy) else "not chief"
    role = f"worker {index} of {count} ({chief})" if count > 1 else "1 worker"
    replicas = strategy.num_replicas_in_sync
    return (f"{name}: {role}, {replicas} replica{'s' if replicas > 1 else ''} in sync; "
            f"devices here: {', '.join(_devices(strategy))}")


@contextlib.contextmanager
def write_dir(run_dir, strategy):
    """The folder this process writes its run-folder files into, for the duration of the block.

    The chief gets ``run_dir`` itself. Every other worker gets a fresh folder
    ``<tmp>/wbc_tf-workertemp_<task>-*`` of its own, removed when the block ends (also on error).
    """
    if is_chief(strategy):
        yield run_dir
        return
    _, task_id, _ = _cluster(strategy)
    path = tempfile.mkdtemp(prefix=f"wbc_tf-workertemp_{task_id}-")
    log.info("worker %d is not the chief: it writes its checkpoints, weights and logs into %s, "
             "removed at the end", worker_index(strategy)[0], path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def replica_rows(dataset, num_replicas, context):
    """This input pipeline's share of a dataset of global batches: one element per local replica.

    Args:
        dataset: elements are (B, ...) tensors or tuples of them, B static (the global batch).
        num_replicas: replicas in sync over all workers, R.
        context: the `tf.distribute.InputContext` of this worker's input pipeline.

    Returns:
        A dataset yielding, for every global batch in turn, rows ``[r·b, (r+1)·b)`` (``b = B / R``)
        for each replica ``r`` of this pipeline, in replica order (pipeline ``p`` of ``P`` holds
        replicas ``p·R/P`` to ``(p+1)·R/P - 1``).

    Raises:
        ValueError: B is not divisible by R.
    """
    batch = tf.nest.flatten(dataset.element_spec)[0].shape[0]
    if batch is None or batch % num_replicas:
        raise ValueError(f"batch_size {batch} is the global batch; it must be divisible by the "
                         f"{num_replicas} replicas")
    local = num_replicas // context.num_input_pipelines
    first = context.input_pipeline_id * local

    def rows(*xs):
        # each (B, ...) -> (local, b, ...): the rows of this pipeline's replicas
        parts = tuple(tf.reshape(x, [num_replicas, batch // num_replicas] + x.shape[1:].as_list())
                      [first:first + local] for x in xs)
        return parts if len(parts) > 1 else parts[0]

    return dataset.map(rows).unbatch().prefetch(local)


def distribute_batches(strategy, make_dataset):
    """Distribute a dataset of global batches so that every step trains on the same rows anywhere.

    Args:
        strategy: the run's strategy.
        make_dataset: a no-argument callable returning the dataset of global batches (see
            `replica_rows`), called once per worker, on that worker.

    Returns:
        A distributed dataset for ``strategy.run`` (the plain dataset with one replica).
    """
    replicas = strategy.num_replicas_in_sync

    def dataset_fn(context):
        dataset = make_dataset()
        return dataset if replicas == 1 else replica_rows(dataset, replicas, context)

    return strategy.distribute_datasets_from_function(dataset_fn)


@functools.lru_cache(maxsize=None)
def _gatherer(strategy):
    """A `tf.function` (n,) float64 -> (replicas, n): every replica's row, on every worker (traced once)."""

    @tf.function
    def gather(row):
        return strategy.gather(strategy.run(lambda: tf.identity(row)[None]), axis=0)

    return gather


def _everywhere(strategy, values):
    """(replicas, n) float64 NumPy: ``values`` (n numbers) as every replica of every worker holds them."""
    return _gatherer(strategy)(tf.constant([float(v) for v in values], tf.float64)).numpy()


def check_same_everywhere(strategy, what, values):
    """Raise unless every worker holds the same ``values``; a barrier across the workers.

    Args:
        what: what ``values`` are, for the message (e.g. ``'resume point (phase, step)'``).
        values: a tuple of numbers, exact in float64.

    Raises:
        DistributeError: the workers disagree (e.g. they restored different checkpoints).
    """
    if worker_index(strategy)[1] == 1:
        return
    seen = sorted({tuple(row) for row in _everywhere(strategy, values).tolist()})
    if len(seen) > 1:
        raise DistributeError(f"the workers disagree on the {what}: {seen} (this worker: {tuple(values)}); "
                              f"does every worker see the same run folder?")


def max_everywhere(strategy, value):
    """The largest of every worker's integer ``value`` (``value`` itself in one process).

    A barrier: every worker must call it at the same point. The trainer calls it after every step
    with the signal number it received (0: none), so that a SIGTERM sent to one worker (a pre-empted
    node) stops every worker at the same step, each saving that step's checkpoint.
    """
    if worker_index(strategy)[1] == 1:
        return value
    return int(_everywhere(strategy, [value]).max())
