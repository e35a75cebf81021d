# -*- coding: utf-8 -*-
r"""
recbole_llm4sbr.intent.distributed
##################################
The Ray execution mode of stage one (``intent_execution: ray``).

Generation is the only expensive stage, so it is the only one that is distributed: a pool of Ray
actors (:class:`GenerationWorker`), each of which builds the configured generation backend
(``transformers`` on the GPU or CPU Ray gives it, or ``openai`` fanning requests out to a server)
once, from the config dict. :class:`RayGenerationPool` quacks like a backend for the pipeline:
``generate(conversations, progress)`` cuts one side-file shard's prompts into chunks of
``intent_ray_chunk_size``, dispatches them with ``ActorPool.map_unordered``, and puts the answers
back in prompt order as they arrive. Prompt building, answer encoding, localization and the
resumable side-file writer stay on the driver, unchanged, so resume and failure recording behave
exactly as in-process.

Ray Data is not used: in Ray 2.6.3 with the pinned stack, ``ray.data`` imports but fails on first
use (building any block imports ``pkg_resources._vendor``, which setuptools >= 71 no longer has),
and patching third-party modules is out of the question; Ray core actors work on a local instance
and on a cluster alike. ``ray`` is imported only when this mode runs.
"""

import os
import time
from logging import getLogger

from recbole_llm4sbr.intent.backends import Generation, backend_class, create_backend

logger = getLogger(__name__)

EXECUTION_MODES = ("local", "ray")
#: config keys shipped to the actors (every key the generation backends read)
CONFIG_PREFIXES = ("intent_", "transformers_", "openai_")


class _ConfigDict(dict):
    """A plain dict that answers ``None`` for missing keys, as RecBole's ``Config`` does."""

    def __missing__(self, key):
        return None


def execution_mode(config):
    mode = str(config["intent_execution"] or "local").strip().lower()
    if mode not in EXECUTION_MODES:
        raise ValueError(f"Unknown intent_execution [{mode}]; "
                         f"choose one of {list(EXECUTION_MODES)}.")
    return mode


def execution_backend(config):
    """The generation backend for ``intent_execution``: a :class:`RayGenerationPool` in ``ray``
    mode with an LLM backend, else ``None`` (the pipeline then builds the local backend)."""
    if execution_mode(config) == "local":
        return None
    name = config["intent_backend"] or "item-text"
    if not backend_class(name).uses_llm:
        logger.info(f"intent_execution=ray: the [{name}] backend generates nothing (no LLM), so "
                    f"there is nothing to distribute; running locally.")
        return None
    return RayGenerationPool(config)


def actor_config(config):
    """The JSON-able part of ``config`` that a backend needs, as a plain dict."""
    final = getattr(config, "final_config_dict", config)
    values = {k: v for k, v in dict(final).items() if str(k).startswith(CONFIG_PREFIXES)}
    path = values.get("transformers_model_path")
    if path and os.path.isdir(str(path)):  # a driver-relative path means nothing to a worker
        values["transformers_model_path"] = os.path.abspath(str(path))
    return values


# ---------------------------------------------------------------- the actor
class GenerationWorker:
    """One generation backend, built once per actor (decorated with ``ray.remote`` by the pool).

    ``secrets``: environment variables forwarded from the driver (the OpenAI key), set only where
    the worker does not define them itself; they are never logged. ``backend_factory``: a
    picklable ``factory(config) -> backend`` (default: the backend named by ``intent_backend``).
    """

    def __init__(self, config, secrets=None, num_threads=None, backend_factory=None):
        for key, value in (secrets or {}).items():
            os.environ.setdefault(key, value)
        config = _ConfigDict(config)
        if num_threads and (config["intent_backend"] == "transformers"):
            import torch

            torch.set_num_threads(max(1, int(num_threads)))
        self.backend = (backend_factory or create_backend)(config)

    def ready(self):
        """Where this actor runs (for the driver's log)."""
        import ray

        return {"node": ray.util.get_node_ip_address(), "pid": os.getpid(),
                "gpus": [str(g) for g in ray.get_gpu_ids()],
                "device": str(getattr(self.backend, "device", "") or "")}

    def provenance(self):
        return self.backend.provenance()

    def generate(self, conversations):
        """One :class:`Generation` per conversation, as the in-process backend returns them. A
        backend that raises marks the whole chunk failed (recorded, retried on the next run)."""
        try:
            gens = list(self.backend.generate(conversations))
            if len(gens) != len(conversations):
                raise RuntimeError(f"the backend returned {len(gens)} answers for "
                                   f"{len(conversations)} prompts")
        except Exception as e:
            getLogger(__name__).warning(f"Generation failed for a chunk: {e!r}")
            gens = [Generation(error=f"{type(e).__name__}: {e}") for _ in conversations]
        return gens

    def generate_chunk(self, start, conversations):
        """``(start, generate(conversations))``: the offset lets the driver reorder chunks."""
        return start, self.generate(conversations)


# ---------------------------------------------------------------- the driver side
class RayGenerationPool:
    """A pool of :class:`GenerationWorker` actors behind the backend interface of the pipeline.

    Ray is initialised with ``ray.init(address=intent_ray_address or None)`` only when it is not
    initialised yet (and shut down again by :meth:`close` in that case). The actors start lazily,
    on the first :meth:`provenance` or :meth:`generate`, so a complete side file starts nothing.
    """

    uses_llm = True

    def __init__(self, config, backend_factory=None):
        self.name = config["intent_backend"] or "item-text"
        self.config = actor_config(config)
        self.address = config["intent_ray_address"] or None
        self.num_actors = int(config["intent_ray_num_actors"] or 2)
        cpus, gpus = config["intent_ray_cpus_per_actor"], config["intent_ray_gpus_per_actor"]
        self.cpus = float(1 if cpus is None else cpus)
        self.gpus = float(gpus or 0)
        if self.num_actors < 1 or self.cpus < 0 or self.gpus < 0:
            raise ValueError(f"intent_ray_num_actors must be >= 1 and the per-actor CPUs/GPUs >= 0 "
                             f"(got {self.num_actors}, {self.cpus}, {self.gpus}).")
        chunk = config["intent_ray_chunk_size"]
        if not chunk:  # one backend batch per actor call
            chunk = (config["openai_concurrency"] if self.name == "openai"
                     else config["transformers_batch_size"]) or 8
        self.chunk_size = max(1, int(chunk))
        self.backend_factory = backend_factory
        self._actors, self._pool, self._provenance, self._started_ray = None, None, None, False

    def __repr__(self):
        return (f"RayGenerationPool(backend={self.name!r}, address={self.address!r}, "
                f"actors={self.num_actors}, cpus={self.cpus:g}, gpus={self.gpus:g})")

    # ------------------------------------------------------------------ lifecycle
    def _init_ray(self):
        import ray

        if ray.is_initialized():
            return ray
        kwargs = {} if self.address else {"include_dashboard": False}
        logger.info(f"Starting Ray: {'a local instance' if not self.address else self.address}.")
        ray.init(address=self.address, **kwargs)
        self._started_ray = True
        return ray

    def _check_resources(self, ray):
        total = ray.cluster_resources()
        need = {"CPU": self.cpus * self.num_actors, "GPU": self.gpus * self.num_actors}
        short = {k: (v, total.get(k, 0.0)) for k, v in need.items() if v > total.get(k, 0.0)}
        if not short:
            return
        text = ", ".join(f"{k}: {v:g} needed, {have:g} in the cluster" for k, (v, have) in
                         short.items())
        hint = ("lower intent_ray_num_actors or intent_ray_cpus_per_actor / "
                "intent_ray_gpus_per_actor")
        if self._started_ray:  # a local instance never grows: the actors would wait forever
            raise ValueError(f"{self.num_actors} generation actors do not fit on the local Ray "
                             f"instance ({text}); {hint}.")
        logger.warning(f"{self.num_actors} generation actors do not fit in the Ray cluster now "
                       f"({text}): waiting for resources (an autoscaling cluster adds nodes; "
                       f"otherwise {hint}).")

    def start(self):
        if self._pool is not None:
            return
        started = time.perf_counter()
        ray = self._init_ray()
        from ray.util import ActorPool

        self._check_resources(ray)
        key_env = self.config.get("openai_api_key_env") or "OPENAI_API_KEY"
        secrets = ({key_env: os.environ[key_env]}
                   if self.name == "openai" and os.environ.get(key_env) else None)
        remote = ray.remote(GenerationWorker).options(num_cpus=self.cpus, num_gpus=self.gpus)
        self._actors = [remote.remote(self.config, secrets, self.cpus, self.backend_factory)
                        for _ in range(self.num_actors)]
        try:
            where = ray.get([a.ready.remote() for a in self._actors])
            self._provenance = ray.get(self._actors[0].provenance.remote())
        except BaseException:
            self.close()
            raise
        nodes = sorted({w["node"] for w in where})
        devices = sorted({w["device"] or "-" for w in where})
        logger.info(f"{self.num_actors} Ray generation actors ({self.name}, {self.cpus:g} CPU / "
                    f"{self.gpus:g} GPU each, device {', '.join(devices)}) on {len(nodes)} "
                    f"node(s) {nodes}; chunks of {self.chunk_size} prompts; ready in "
                    f"{time.perf_counter() - started:.1f} s.")
        self._pool = ActorPool(self._actors)

    def close(self):
        """Kill the actors (and shut Ray down if this pool started it)."""
        import ray

        for actor in self._actors or []:
            try:
                ray.kill(actor)
            except Exception:  # already dead, or Ray already down
                pass
        self._actors, self._pool = None, None
        if self._started_ray and ray.is_initialized():
            ray.shutdown()
        self._started_ray = False

    # ------------------------------------------------------------------ backend interface
    def provenance(self):
        """The provenance of the backend the actors run (identical to the in-process one, so a
        side file started in one mode resumes in the other)."""
        self.start()
        return dict(self._provenance)

    def generate(self, conversations, progress=None):
        """One :class:`Generation` per conversation, in order; ``progress(n)`` as chunks land."""
        from ray.exceptions import RayActorError

        self.start()
        results = [None] * len(conversations)
        chunks = [(start, conversations[start:start + self.chunk_size])
                  for start in range(0, len(conversations), self.chunk_size)]
        try:
            for start, gens in self._pool.map_unordered(
                    lambda actor, chunk: actor.generate_chunk.remote(*chunk), chunks):
                results[start:start + len(gens)] = gens
                if progress:
                    progress(len(gens))
        except RayActorError as e:
            raise RuntimeError(f"A Ray generation actor died ({e}). The shards committed so far "
                               f"are kept: run the same command again to resume.") from e
        return results
