"""The one URI layer: every location a platform hands a component, opened the same way.

Schemes:
- a local path or ``file://`` (kfp.local, mounted volumes, Vertex's ``/gcs/<bucket>/...`` FUSE);
- ``gs://`` (through the ``/gcs`` FUSE mount when the pod has one, else GCS with the pod's
  credentials);
- ``s3://`` (S3, or any S3-compatible endpoint named by ``AWS_ENDPOINT_URL_S3`` /
  ``AWS_ENDPOINT_URL``);
- ``minio://`` (Kubeflow Pipelines' artifact store: S3 at ``AWS_ENDPOINT_URL`` or KFP's
  in-cluster MinIO service, credentials from KFP's ``mlpipeline-minio-artifact`` secret as
  ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``);
- ``runs:/``, ``models:/``, ``mlflow-artifacts:/`` (MLflow's artifact store, downloaded through
  the tracking server in ``MLFLOW_TRACKING_URI``).

Plain Python: imports pyarrow (and boto3 / google-cloud-storage / mlflow for the schemes that
need them) lazily, never kfp.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass

logger = logging.getLogger(__name__)

MINIO_SECRET = "mlpipeline-minio-artifact"
"""Kubeflow Pipelines' secret with its MinIO store's credentials, and what each key becomes."""
MINIO_SECRET_KEYS = {"accesskey": "AWS_ACCESS_KEY_ID", "secretkey": "AWS_SECRET_ACCESS_KEY"}

MINIO_DEFAULT_ENDPOINT = "http://minio-service.kubeflow:9000"
"""Where Kubeflow Pipelines' MinIO answers inside the cluster (its default install)."""
GCS_FUSE_ROOT = "/gcs/"
MLFLOW_SCHEMES = ("runs:/", "models:/", "mlflow-artifacts:/")

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:/", re.IGNORECASE)
_S3_SCHEMES = ("s3://", "minio://")
_KSERVE_SCHEMES = ("gs://", "s3://", "pvc://", "http://", "https://", "hf://", "oci://", "hdfs://", "webhdfs://")


class UriError(ValueError):
    """A URI has a scheme this layer does not know, or its store cannot be reached."""


def is_local(uri: str) -> bool:
    """True for paths on this machine's filesystem (including ``file://`` and FUSE mounts)."""
    return not _SCHEME.match(uri) or uri.startswith("file://")


def local_path(uri: str) -> str | None:
    """The local path of ``uri`` when there is one (``file://``, a path, ``gs://`` on FUSE)."""
    if uri.startswith("file://"):
        return uri[len("file://"):]
    if uri.startswith("gs://") and os.path.isdir(GCS_FUSE_ROOT):
        return GCS_FUSE_ROOT + uri[len("gs://"):]
    return uri if not _SCHEME.match(uri) else None


def filesystem_for(uri: str):
    """Returns (pyarrow filesystem, path inside it) for any supported URI.

    Raises:
        UriError: an unknown scheme, or a store that cannot be configured.
    """
    from pyarrow import fs

    path = local_path(uri)
    if path is not None:
        return fs.LocalFileSystem(), path
    if uri.startswith(MLFLOW_SCHEMES):
        return fs.LocalFileSystem(), download_mlflow(uri)
    if uri.startswith(_S3_SCHEMES) and _s3_settings(uri).endpoint:
        settings = _s3_settings(uri)
        try:
            return fs.S3FileSystem(**settings.pyarrow_kwargs()), uri.split("://", 1)[1]
        except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid/OSError
            raise UriError(f"cannot open {uri!r} (S3 endpoint {settings.endpoint}): {exc}") from exc
    if uri.startswith(("s3://", "gs://")):  # AWS or GCS itself: pyarrow finds the bucket's region
        try:
            return fs.FileSystem.from_uri(uri)
        except Exception as exc:  # noqa: BLE001
            raise UriError(f"cannot open {uri!r}: {exc}") from exc
    raise UriError(
        f"cannot open {uri!r}: unknown scheme (expected a local path, file://, gs://, /gcs/, s3://, "
        f"minio://, {', '.join(MLFLOW_SCHEMES)})"
    )


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


def exists(uri: str) -> bool:
    from pyarrow import fs

    filesystem, path = filesystem_for(uri)
    return filesystem.get_file_info(path).type != fs.FileType.NotFound


def read_bytes(uri: str) -> bytes:
    filesystem, path = filesystem_for(uri)
    with filesystem.open_input_stream(path) as stream:
        return stream.read()


def write_bytes(uri: str, data: bytes) -> None:
    """Writes a whole object; parent folders are created (local) or implicit (object stores)."""
    filesystem, path = filesystem_for(uri)
    parent = path.rstrip("/").rsplit("/", 1)[0]
    if parent and parent != path:
        filesystem.create_dir(parent, recursive=True)
    with filesystem.open_output_stream(path) as stream:
        stream.write(data)


def list_files(uri: str) -> list[str]:
    """Paths (inside the filesystem) of every file under a folder URI, sorted; [] if absent."""
    from pyarrow import fs

    filesystem, path = filesystem_for(uri)
    selector = fs.FileSelector(path.rstrip("/"), recursive=True, allow_not_found=True)
    return sorted(i.path for i in filesystem.get_file_info(selector) if i.type == fs.FileType.File)


def delete_dir(uri: str) -> None:
    """Deletes a folder and everything under it; nothing happens when it does not exist."""
    if not exists(uri):
        return
    filesystem, path = filesystem_for(uri)
    filesystem.delete_dir(path.rstrip("/"))


def upload_dir(local_dir: str, uri: str) -> int:
    """Copies every file under ``local_dir`` to the folder ``uri``; returns the file count."""
    import shutil

    filesystem, base = filesystem_for(uri)
    count = 0
    for root, _, names in os.walk(local_dir):
        for name in names:
            source = os.path.join(root, name)
            target = join(base, os.path.relpath(source, local_dir))
            filesystem.create_dir(target.rsplit("/", 1)[0], recursive=True)
            with open(source, "rb") as f, filesystem.open_output_stream(target) as out:
                shutil.copyfileobj(f, out, 1 << 20)
            count += 1
    return count


def download_dir(uri: str, local_dir: str) -> int:
    """Copies every file under the folder ``uri`` into ``local_dir``; returns the file count."""
    filesystem, base = filesystem_for(uri)
    base = base.rstrip("/")
    files = list_files(uri)
    for path in files:
        target = os.path.join(local_dir, path[len(base):].lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with filesystem.open_input_stream(path) as stream, open(target, "wb") as out:
            out.write(stream.read())
    return len(files)


# ------------------------------------------------------------------ fingerprints of stored data


@dataclass(frozen=True)
class Fingerprint:
    """What identifies one version of stored data, without reading it when the store says."""

    value: str  # "<method>:<digest>", stable for the same content / object version
    method: str  # sha256 (local content), etag (S3/MinIO), generation (GCS)
    size: int  # bytes


def fingerprint(uri: str) -> Fingerprint:
    """Fingerprints a file or folder of files.

    Local data is hashed (sha256 of the bytes; a folder hashes every file's relative path and
    bytes in sorted order). Objects in S3/MinIO use their ETag and size, objects in GCS their
    generation and size: the store's own version of the object, so a large object is never
    downloaded just to be hashed, and an overwrite (even with other bytes of the same size) is
    a new fingerprint.
    """
    path = local_path(uri)
    if path is not None:
        return _local_fingerprint(uri, path)
    if uri.startswith(_S3_SCHEMES):
        return _s3_fingerprint(uri)
    if uri.startswith("gs://"):
        return _gcs_fingerprint(uri)
    raise UriError(f"cannot fingerprint {uri!r}: expected a local path, gs://, /gcs/, s3:// or minio://")


def _local_fingerprint(uri: str, path: str) -> Fingerprint:
    if os.path.isdir(path):
        files = sorted(os.path.join(r, n) for r, _, names in os.walk(path) for n in names)
    elif os.path.isfile(path):
        files = [path]
    else:
        raise FileNotFoundError(f"data {uri!r} does not exist")
    digest, size = hashlib.sha256(), 0
    for file in files:
        if len(files) > 1:
            digest.update(os.path.relpath(file, path).encode() + b"\0")
        with open(file, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    return Fingerprint(f"sha256:{digest.hexdigest()}", "sha256", size)


def _s3_fingerprint(uri: str) -> Fingerprint:
    import boto3
    from botocore.exceptions import ClientError

    settings = _s3_settings(uri)
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    client = boto3.client("s3", **settings.boto3_kwargs())
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise FileNotFoundError(f"data {uri!r} does not exist") from exc
        raise UriError(f"cannot read the object version of {uri!r}: {exc}") from exc
    etag = head["ETag"].strip('"')
    size = int(head["ContentLength"])
    return Fingerprint(f"etag:{etag}:{size}", "etag", size)


def _gcs_fingerprint(uri: str) -> Fingerprint:
    from google.cloud import storage

    bucket, _, name = uri[len("gs://"):].partition("/")
    blob = storage.Client().bucket(bucket).get_blob(name)
    if blob is None:
        raise FileNotFoundError(f"data {uri!r} does not exist")
    return Fingerprint(f"generation:{blob.generation}:{blob.size}", "generation", int(blob.size))


# ------------------------------------------------------------------------------ object stores


@dataclass(frozen=True)
class _S3Settings:
    endpoint: str  # "" = AWS
    region: str | None  # None: the SDK's own default (S3 redirects to the bucket's region)

    def pyarrow_kwargs(self) -> dict:
        kwargs = {"region": self.region} if self.region else {}
        if self.endpoint:
            scheme, _, host = self.endpoint.partition("://")
            kwargs.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
        return kwargs

    def boto3_kwargs(self) -> dict:
        kwargs = {"region_name": self.region} if self.region else {}
        if self.endpoint:
            kwargs["endpoint_url"] = self.endpoint
        return kwargs


def _s3_settings(uri: str) -> _S3Settings:
    """Endpoint and region from the AWS SDKs' own variables; minio:// defaults to KFP's MinIO."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL", "")
    if uri.startswith("minio://") and not endpoint:
        endpoint = MINIO_DEFAULT_ENDPOINT
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    # An S3-compatible server (MinIO) needs some region for request signing.
    return _S3Settings(endpoint=endpoint, region=region or ("us-east-1" if endpoint else None))


# ------------------------------------------------------------------------------------ MLflow


@functools.lru_cache(maxsize=64)  # one download per artifact per process (runs:/ never change)
def download_mlflow(uri: str) -> str:
    """Downloads an MLflow artifact (``runs:/``, ``models:/``, ``mlflow-artifacts:/``) to a local
    temporary folder through the tracking server in ``MLFLOW_TRACKING_URI``; returns its path."""
    import mlflow

    from components import registry

    tracking_uri = registry.resolve_tracking_uri(required_for=uri)
    try:
        return mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=tempfile.mkdtemp(prefix="mlflow-"), tracking_uri=tracking_uri
        )
    except Exception as exc:  # noqa: BLE001 - MlflowException, HTTP and store errors
        raise UriError(f"cannot download {uri!r} from MLflow at {tracking_uri}: {exc}") from exc


# ------------------------------------------------------------------------------------ KServe


def for_kserve(uri: str) -> str:
    """The ``storageUri`` KServe's storage initializer reads for ``uri``.

    KFP's ``minio://`` becomes ``s3://`` (with the MinIO endpoint set on the service account);
    a Vertex ``/gcs/`` path becomes ``gs://``.

    Raises:
        UriError: a location KServe cannot read (a local path, an MLflow-proxied URI).
    """
    if uri.startswith("minio://"):
        return "s3://" + uri[len("minio://"):]
    if uri.startswith(GCS_FUSE_ROOT):
        return "gs://" + uri[len(GCS_FUSE_ROOT):]
    if uri.startswith(_KSERVE_SCHEMES) or uri.startswith("azure://") or ".blob.core.windows.net" in uri:
        return uri
    raise UriError(
        f"storage URI {uri!r} is not one KServe can read (gs://, s3://, pvc://, https://, ...): a "
        "local path only works for target='local', and an mlflow-artifacts:/ URI needs an MLflow "
        "server with a direct artifact root (--default-artifact-root s3://... or gs://...); "
        "or pass storage_uri"
    )


# ------------------------------------------------------------------------------------ Vertex AI


def for_vertex(uri: str) -> str:
    """The ``gs://`` URI Vertex AI reads for ``uri`` (a model's ``artifactUri``).

    A Vertex ``/gcs/`` FUSE path becomes ``gs://``; ``gs://`` stays.

    Raises:
        UriError: a location Vertex AI cannot read (a local path, s3://, minio://, MLflow's).
    """
    if uri.startswith(GCS_FUSE_ROOT):
        return "gs://" + uri[len(GCS_FUSE_ROOT):]
    if uri.startswith("gs://"):
        return uri
    raise UriError(
        f"Vertex AI reads models only from Cloud Storage, not {uri!r}: expected gs:// or a /gcs/ "
        "path (run the pipeline on Vertex AI, or with a gs:// pipeline root)"
    )
