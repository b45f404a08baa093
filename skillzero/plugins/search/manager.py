"""The retrieval server a run starts for itself when ``env.retriever.url`` is null.

:func:`attach_server` is called by the env's task listing, which the trainer and
``skillzero eval`` run before they build the env pools. On the main process (rank 0;
other ranks build no pools) it starts ``python -m skillzero.plugins.search.server`` for
the configured index (the generated world's BM25 index by default) on a free port of
127.0.0.1, waits until it answers ``/health``, and hands the URL on: it writes it into
the env config mapping (the one the pool's workers receive) and into the environment
variable :data:`MANAGED_URLS_VAR` (inherited by worker processes started later). One
server per index and settings is shared by every caller in the process.

The server stops when the process exits (``atexit``), and, should the process be
killed, by itself: it watches its parent and exits when the parent is gone. The listening
socket is bound here and passed to the child, so the port cannot be taken in between.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skillzero.core.config import cfg_get

__all__ = [
    "MANAGED_URLS_VAR",
    "ManagedServerError",
    "attach_server",
    "ensure_server",
    "index_for",
    "managed_url_for",
    "stop_managed_servers",
]

MANAGED_URLS_VAR = "SKILLZERO_SEARCH_MANAGED_URLS"
"""JSON ``{index folder: url}`` of the servers this process tree started."""


class ManagedServerError(RuntimeError):
    """The retrieval server could not be started; the message holds its log's tail."""


@dataclass
class ManagedServer:
    """A server this process started."""

    index: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path


_SERVERS: dict[tuple[Any, ...], ManagedServer] = {}
_LOCK = threading.Lock()


def is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a process outside one."""
    try:
        return int(os.environ.get("RANK", "0")) == 0
    except ValueError:
        return True


def _index_setting(env_cfg: Mapping[str, Any] | Any | None) -> Path | None:
    index = cfg_get(cfg_get(env_cfg, "retriever"), "index")
    if not index:
        return None
    return Path(os.path.expandvars(os.path.expanduser(str(index)))).resolve()


def index_for(env_cfg: Mapping[str, Any] | Any | None, *, build: bool = True) -> Path:
    """The index an env config searches: ``env.retriever.index``, else the generated
    world's BM25 index (built on first use unless ``build`` is false)."""
    index = _index_setting(env_cfg)
    if index is not None:
        return index
    if cfg_get(env_cfg, "splits"):
        raise ManagedServerError(
            "env.retriever.url and env.retriever.index are both null: point "
            "env.retriever.url at a running server, or env.retriever.index at an index "
            "folder (`skillzero search index --corpus CORPUS --out DIR`) for skillzero to serve"
        )
    from skillzero.plugins.search.generate import (
        ensure_world_for,
        ensure_world_index,
        world_dir_for,
    )

    if not build:
        return world_dir_for(env_cfg) / "index-bm25"
    return ensure_world_index(ensure_world_for(env_cfg), "bm25")


def _publish(index: Path, url: str) -> None:
    try:
        known = json.loads(os.environ.get(MANAGED_URLS_VAR, "{}"))
    except ValueError:
        known = {}
    known[str(index)] = url
    os.environ[MANAGED_URLS_VAR] = json.dumps(known)


def managed_url_for(env_cfg: Mapping[str, Any] | Any | None) -> str | None:
    """The URL of the server started for this config's index by this process tree."""
    try:
        known = json.loads(os.environ.get(MANAGED_URLS_VAR, "{}"))
        index = index_for(env_cfg, build=False)
    except (ValueError, ManagedServerError):
        return None
    return known.get(str(index))


def attach_server(env_cfg: Mapping[str, Any] | Any | None) -> str | None:
    """The URL the env's searches go to: ``env.retriever.url`` when set; otherwise
    (main process only) a started server's, also written into ``env_cfg`` and
    :data:`MANAGED_URLS_VAR`. ``None`` on other ranks."""
    retriever = cfg_get(env_cfg, "retriever")
    url = cfg_get(retriever, "url")
    if url:
        return str(url)
    if not is_main_process():
        return None
    index = index_for(env_cfg)
    url = ensure_server(
        index,
        host=str(cfg_get(retriever, "host", "127.0.0.1")),
        topk=int(cfg_get(retriever, "topk", 3)),
        max_batch_size=int(cfg_get(retriever, "max_batch_size", 256)),
        batch_wait_ms=float(cfg_get(retriever, "batch_wait_ms", 2.0)),
        workers=int(cfg_get(retriever, "workers", 1)),
        device=str(cfg_get(retriever, "device", "cpu")),
        threads=int(cfg_get(retriever, "threads", 1)),
        startup_timeout=float(cfg_get(retriever, "startup_timeout", 600.0)),
    )
    if isinstance(retriever, MutableMapping):
        retriever["url"] = url
    _publish(index, url)
    return url


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def ensure_server(
    index: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    topk: int = 3,
    max_batch_size: int = 256,
    batch_wait_ms: float = 2.0,
    workers: int = 1,
    device: str = "cpu",
    threads: int = 1,
    startup_timeout: float = 600.0,
) -> str:
    """The URL of a running server for ``index`` with these settings, started (and
    waited for) when this process has none yet."""
    from skillzero.plugins.search.client import RetrievalClient

    index = Path(index).resolve()
    key = (str(index), host, topk, max_batch_size, batch_wait_ms, workers, device, threads)
    with _LOCK:
        running = _SERVERS.get(key)
        if running is not None and running.process.poll() is None:
            return running.url
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.bind((host, 0))
            sock.listen(1024)
            sock.set_inheritable(True)
            port = sock.getsockname()[1]
            url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
            descriptor, name = tempfile.mkstemp(prefix="skillzero-search-server-", suffix=".log")
            log_path = Path(name)
            command = [
                sys.executable,
                "-m",
                "skillzero.plugins.search.server",
                "--index",
                str(index),
                "--host",
                host,
                "--port",
                str(port),
                "--fd",
                str(sock.fileno()),
                "--parent-pid",
                str(os.getpid()),
                "--topk",
                str(topk),
                "--max-batch-size",
                str(max_batch_size),
                "--batch-wait-ms",
                str(batch_wait_ms),
                "--workers",
                str(workers),
                "--device",
                device,
                "--threads",
                str(threads),
            ]
            environment = dict(os.environ)
            if threads > 0:
                environment["OMP_NUM_THREADS"] = str(threads)
                environment["MKL_NUM_THREADS"] = str(threads)
            process = subprocess.Popen(
                command,
                pass_fds=[sock.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=descriptor,
                stderr=subprocess.STDOUT,
                env=environment,
            )
            os.close(descriptor)
        finally:
            sock.close()  # the server holds its own copy
        server = ManagedServer(str(index), url, process, log_path)
        probe = RetrievalClient(url, retries=0, timeout=2.0)
        deadline = time.monotonic() + startup_timeout
        try:
            while True:
                code = process.poll()
                if code is not None:
                    raise ManagedServerError(
                        f"the retrieval server for {index} exited with code {code} while "
                        f"starting; its log ({log_path}):\n{_tail(log_path)}"
                    )
                try:
                    probe.health(timeout=2.0)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        _stop(server, keep_log=True)
                        raise ManagedServerError(
                            f"the retrieval server for {index} did not answer within "
                            f"{startup_timeout:g} s; its log ({log_path}):\n{_tail(log_path)}"
                        ) from None
                    time.sleep(0.2)
        finally:
            probe.close()
        _SERVERS[key] = server
    print(
        f"search: started a retrieval server for {index} at {url} (pid {process.pid}, log "
        f"{log_path}); it stops when this process exits",
        file=sys.stderr,
    )
    return url


def _stop(server: ManagedServer, keep_log: bool = False) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)
    if not keep_log:
        server.log_path.unlink(missing_ok=True)


def stop_managed_servers() -> None:
    """Stop every server this process started (also run at exit)."""
    with _LOCK:
        servers = list(_SERVERS.values())
        _SERVERS.clear()
    for server in servers:
        _stop(server)
    os.environ.pop(MANAGED_URLS_VAR, None)


atexit.register(stop_managed_servers)
