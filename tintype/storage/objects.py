"""The object store: a small interface with an S3 backend and a local-directory backend.

Callers never see boto3 types: backend errors become ObjectNotFound or
StorageUnavailable at this boundary.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

from tintype.settings import Settings


class StorageError(RuntimeError):
    pass


class ObjectNotFound(StorageError):
    pass


class StorageUnavailable(StorageError):
    """The store did not answer; the operation may succeed if retried."""


class ObjectWriter(ABC):
    """A new object written as a stream; it appears only when `commit` succeeds."""

    @abstractmethod
    def write(self, data: bytes) -> None: ...

    @abstractmethod
    def commit(self) -> int:
        """Publish the object; returns its size in bytes."""

    @abstractmethod
    def abort(self) -> None: ...


class _LocalWriter(ObjectWriter):
    def __init__(self, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        self.target, self.tmp, self.fh, self.size = target, Path(name), os.fdopen(fd, "wb"), 0

    def write(self, data: bytes) -> None:
        self.fh.write(data)
        self.size += len(data)

    def commit(self) -> int:
        self.fh.close()
        os.replace(self.tmp, self.target)
        return self.size

    def abort(self) -> None:
        self.fh.close()
        self.tmp.unlink(missing_ok=True)


class _S3Writer(ObjectWriter):
    """Multipart upload: memory is bounded by one part, whatever the object's size."""

    PART = 8 * 1024**2

    def __init__(self, store: "S3Store", key: str, content_type: str) -> None:
        self.store, self.key, self.full = store, key, store._key(key)
        self.buffer, self.parts, self.size = bytearray(), [], 0
        try:
            self.upload_id = store.client.create_multipart_upload(
                Bucket=store.bucket, Key=self.full, ContentType=content_type)["UploadId"]
        except Exception as exc:
            raise store._translate(exc, key) from exc

    def write(self, data: bytes) -> None:
        self.buffer.extend(data)
        self.size += len(data)
        while len(self.buffer) >= self.PART:
            self._send(bytes(self.buffer[:self.PART]))
            del self.buffer[:self.PART]

    def _send(self, body: bytes) -> None:
        number = len(self.parts) + 1
        try:
            etag = self.store.client.upload_part(Bucket=self.store.bucket, Key=self.full, PartNumber=number,
                                                 UploadId=self.upload_id, Body=body)["ETag"]
        except Exception as exc:
            raise self.store._translate(exc, self.key) from exc
        self.parts.append({"PartNumber": number, "ETag": etag})

    def commit(self) -> int:
        if self.buffer or not self.parts:
            self._send(bytes(self.buffer))
            self.buffer.clear()
        try:
            self.store.client.complete_multipart_upload(Bucket=self.store.bucket, Key=self.full,
                                                        UploadId=self.upload_id,
                                                        MultipartUpload={"Parts": self.parts})
        except Exception as exc:
            raise self.store._translate(exc, self.key) from exc
        return self.size

    def abort(self) -> None:
        try:
            self.store.client.abort_multipart_upload(Bucket=self.store.bucket, Key=self.full,
                                                     UploadId=self.upload_id)
        except Exception:  # best effort: an abandoned upload expires by bucket policy
            pass


class ObjectStore(ABC):
    @abstractmethod
    def open_writer(self, key: str, content_type: str = "application/octet-stream") -> ObjectWriter: ...

    @abstractmethod
    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None: ...

    @abstractmethod
    def get_file(self, key: str, path: Path) -> None: ...

    @abstractmethod
    def copy(self, src_key: str, dst_key: str) -> None:
        """A new object with the bytes of `src_key`, copied inside the store (a recolour
        job reuses its parent's input without a new upload); ObjectNotFound if it is gone."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int: ...

    @abstractmethod
    def list(self, prefix: str) -> Iterator[str]: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def read_url(self, key: str) -> str:
        """A location ffmpeg can read directly (a path or a presigned URL), so tasks
        stream from the store instead of downloading a whole film."""

    @abstractmethod
    def presign(self, key: str, filename: str | None = None, content_type: str | None = None) -> str | None:
        """A short-lived download URL, or None when the web app must serve the bytes; with
        `content_type`, the download is served as that type whatever the object was stored as."""

    def delete_prefix(self, prefix: str) -> int:
        keys = list(self.list(prefix))
        for key in keys:
            self.delete(key)
        return len(keys)

    def local_path(self, key: str) -> Path | None:
        return None

    def abort_uploads(self, key: str) -> int:
        """Abandon unfinished streamed writes of `key` left by a writer that was killed;
        returns how many. Stores whose writers cannot outlive their process have none."""
        return 0

    @property
    def takes_parts(self) -> bool:
        """Whether clients can send a staged upload's parts to the store itself (presigned
        multipart part URLs) instead of through the web app."""
        return False

    def multipart(self, key: str) -> "S3Multipart":
        """The S3 multipart upload of `key`; only stores that take parts have one."""
        raise StorageError("this store takes no parts; send them through the web app")


class LocalStore(ObjectStore):
    """Objects as files under one directory: the embedded default."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise StorageError(f"object key {key!r} escapes the store")
        return path

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)  # readers never see a half-written object
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def open_writer(self, key: str, content_type: str = "application/octet-stream") -> ObjectWriter:
        return _LocalWriter(self._path(key))

    def copy(self, src_key: str, dst_key: str) -> None:
        source = self._path(src_key)
        if not source.is_file():
            raise ObjectNotFound(src_key)
        self.put_file(dst_key, source)

    def get_file(self, key: str, path: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise ObjectNotFound(key)
        shutil.copyfile(source, path)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        source = self._path(key)
        if not source.is_file():
            raise ObjectNotFound(key)
        return source.stat().st_size

    def list(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        if not base.exists():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.startswith(".upload-"):
                yield path.relative_to(self.root).as_posix()

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        for parent in path.parents:
            if parent == self.root:
                break
            try:
                parent.rmdir()
            except OSError:
                break

    def read_url(self, key: str) -> str:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        return str(path)

    def presign(self, key: str, filename: str | None = None, content_type: str | None = None) -> str | None:
        return None

    def local_path(self, key: str) -> Path | None:
        return self._path(key)


class S3Store(ObjectStore):
    """Any S3-compatible service through boto3 (AWS, MinIO, Ceph, moto)."""

    MULTIPART_THRESHOLD = 8 * 1024**2

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None, region: str,
                 presign_seconds: int, public_endpoint_url: str | None = None, read_timeout: float = 60.0) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket, self.prefix, self.presign_seconds = bucket, prefix.strip("/"), presign_seconds
        config = Config(retries={"max_attempts": 5, "mode": "standard"},
                        connect_timeout=10, read_timeout=read_timeout, signature_version="s3v4")
        self.client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)
        # Browsers get URLs signed for the public host; workers read through the internal one.
        self.public = (boto3.client("s3", endpoint_url=public_endpoint_url, region_name=region, config=config)
                       if public_endpoint_url else self.client)
        self.transfer = TransferConfig(multipart_threshold=self.MULTIPART_THRESHOLD,
                                       multipart_chunksize=self.MULTIPART_THRESHOLD, max_concurrency=4)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _translate(self, exc: Exception, key: str) -> StorageError:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchKey", "NotFound"):
                return ObjectNotFound(key)
            return StorageUnavailable(f"S3 {code or 'error'} on {key}: {exc}")
        return StorageUnavailable(f"S3 unreachable on {key}: {exc}")

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        try:
            self.client.upload_file(str(path), self.bucket, self._key(key),
                                    ExtraArgs={"ContentType": content_type}, Config=self.transfer)
        except Exception as exc:  # boto3 raises many types; all become ours
            raise self._translate(exc, key) from exc

    def open_writer(self, key: str, content_type: str = "application/octet-stream") -> ObjectWriter:
        return _S3Writer(self, key, content_type)

    def copy(self, src_key: str, dst_key: str) -> None:
        """Server-side copy (managed: multipart above 8 MiB, so objects over 5 GB copy too)."""
        try:
            self.client.copy({"Bucket": self.bucket, "Key": self._key(src_key)}, self.bucket, self._key(dst_key),
                             Config=self.transfer)
        except Exception as exc:
            raise self._translate(exc, src_key) from exc

    def get_file(self, key: str, path: Path) -> None:
        try:
            self.client.download_file(self.bucket, self._key(key), str(path), Config=self.transfer)
        except Exception as exc:
            raise self._translate(exc, key) from exc

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
            return True
        except ObjectNotFound:
            return False

    def size(self, key: str) -> int:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"])
        except Exception as exc:
            raise self._translate(exc, key) from exc

    def list(self, prefix: str) -> Iterator[str]:
        full = self._key(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full)
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][strip:]
        except Exception as exc:
            raise self._translate(exc, prefix) from exc

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            raise self._translate(exc, key) from exc

    def read_url(self, key: str) -> str:
        return self._presign(self.client, key, None, expires=max(self.presign_seconds, 12 * 3600))

    def presign(self, key: str, filename: str | None = None, content_type: str | None = None) -> str | None:
        return self._presign(self.public, key, filename, content_type=content_type)

    def _presign(self, client, key: str, filename: str | None, expires: int | None = None,
                 content_type: str | None = None) -> str:
        params = {"Bucket": self.bucket, "Key": self._key(key)}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        if content_type:
            params["ResponseContentType"] = content_type
        try:
            return client.generate_presigned_url("get_object", Params=params,
                                                      ExpiresIn=expires or self.presign_seconds)
        except Exception as exc:
            raise self._translate(exc, key) from exc

    def abort_uploads(self, key: str) -> int:
        full = self._key(key)
        try:
            listed = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=full).get("Uploads", [])
            pending = [upload["UploadId"] for upload in listed if upload["Key"] == full]
            for upload_id in pending:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
        except Exception as exc:
            raise self._translate(exc, key) from exc
        return len(pending)

    @property
    def takes_parts(self) -> bool:
        return True

    def multipart(self, key: str) -> S3Multipart:
        return S3Multipart(self, key)


class S3Multipart:
    """A staged upload's S3 multipart upload, driven by the web app while the browser sends
    the parts straight to S3 (tintype.jobs.uploads)."""

    def __init__(self, store: S3Store, key: str) -> None:
        self.store, self.key, self.full = store, key, store._key(key)

    def start(self, content_type: str) -> str:
        """A new multipart upload of the key; returns its upload id."""
        try:
            return self.store.client.create_multipart_upload(Bucket=self.store.bucket, Key=self.full,
                                                             ContentType=content_type)["UploadId"]
        except Exception as exc:
            raise self.store._translate(exc, self.key) from exc

    def part_url(self, upload_id: str, number: int, expires: int) -> str:
        """A presigned PUT for one part, signed for the host browsers reach."""
        params = {"Bucket": self.store.bucket, "Key": self.full, "UploadId": upload_id, "PartNumber": number}
        try:
            return self.store.public.generate_presigned_url("upload_part", Params=params, ExpiresIn=expires)
        except Exception as exc:
            raise self.store._translate(exc, self.key) from exc

    def parts(self, upload_id: str) -> dict[int, tuple[int, str]]:
        """The parts S3 holds: number -> (size, ETag); ObjectNotFound once it is aborted."""
        found: dict[int, tuple[int, str]] = {}
        try:
            pages = self.store.client.get_paginator("list_parts").paginate(
                Bucket=self.store.bucket, Key=self.full, UploadId=upload_id)
            for page in pages:
                for part in page.get("Parts", []):
                    found[int(part["PartNumber"])] = (int(part["Size"]), part["ETag"])
        except Exception as exc:
            raise self._missing(exc) from exc
        return found

    def complete(self, upload_id: str, etags: dict[int, str]) -> None:
        parts = [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]
        try:
            self.store.client.complete_multipart_upload(Bucket=self.store.bucket, Key=self.full, UploadId=upload_id,
                                                        MultipartUpload={"Parts": parts})
        except Exception as exc:
            raise self._missing(exc) from exc

    def abort(self, upload_id: str) -> None:
        """Abandon the upload and the parts it holds; one already gone is no error."""
        try:
            self.store.client.abort_multipart_upload(Bucket=self.store.bucket, Key=self.full, UploadId=upload_id)
        except Exception as exc:
            error = self._missing(exc)
            if not isinstance(error, ObjectNotFound):
                raise error from exc

    def _missing(self, exc: Exception) -> StorageError:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == "NoSuchUpload":
            return ObjectNotFound(self.key)
        return self.store._translate(exc, self.key)


def store_from_settings(settings: Settings) -> ObjectStore:
    """Build the store named by STORAGE_URL: file:///dir or s3://bucket/prefix."""
    url = urlparse(settings.storage_url)
    if url.scheme == "file":
        return LocalStore(Path(url.path))
    if url.scheme == "s3":
        if not url.netloc:
            raise ValueError(f"STORAGE_URL {settings.storage_url!r} names no bucket")
        return S3Store(url.netloc, url.path, settings.s3_endpoint_url, settings.s3_region,
                       settings.presign_seconds, settings.s3_public_endpoint_url, settings.s3_read_timeout)
    raise ValueError(f"STORAGE_URL must be file:// or s3://, got {settings.storage_url!r}")
