"""Input files in object storage: `s3://`, `gs://` (with gcsfs installed) or any other fsspec URL.

Listing and reading go through fsspec (s3fs for S3), so credentials come from where those libraries
look: for S3 the AWS environment variables, `~/.aws/config` and `AWS_PROFILE`, and
`AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`) for an S3-compatible store. A listed object carries
its size and version (ETag or generation), which key the run's resume markers the way size and
modification time do for a local file. Errors of access become one line naming the URL.
"""

from __future__ import annotations

import glob
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any

from cleaning.errors import CleaningError

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://")
READ_BLOCK = 8 << 20  # bytes fetched per request while streaming a remote file


@dataclass(frozen=True)
class RemoteFile:
    """One object: enough to name it, key its markers and open it in any worker."""

    url: str
    size: int
    version: str  # changes whenever the object's content does

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    def stat(self) -> SimpleNamespace:
        """Size and version in the shape of `os.stat_result` (as the resume key reads them)."""
        return SimpleNamespace(st_size=self.size, st_mtime_ns=self.version)

    def __str__(self) -> str:
        return self.url


InputFile = Path | RemoteFile  # a local input file, or an object in a store


def open_input(file: InputFile) -> IO[bytes]:
    """A binary stream of an input file, local or remote (the caller closes it)."""
    if isinstance(file, RemoteFile):
        return open_remote(file)
    return open(file, "rb", buffering=1 << 20)


def is_url(pattern: str) -> bool:
    match = _SCHEME.match(pattern)
    return bool(match) and match.group(1) != "file"


def list_remote(pattern: str) -> list[RemoteFile]:
    """The objects a URL names: one object, every object under a prefix, or those matching a glob."""
    fs, path = filesystem(pattern)
    scheme = _SCHEME.match(pattern).group(1)  # type: ignore[union-attr]
    try:
        if glob.has_magic(path):
            infos = fs.glob(path, detail=True)
        else:
            info = fs.info(path)
            infos = fs.find(path, detail=True) if info["type"] == "directory" else {path: info}
    except FileNotFoundError as exc:
        raise CleaningError(f"input not found: {pattern} ({error_reason(exc)})") from exc
    except PermissionError as exc:
        raise CleaningError(f"access denied to {pattern}: {error_reason(exc)}{CREDENTIALS_HINT}") from exc
    except Exception as exc:  # botocore and gcsfs raise their own types (no credentials, bad endpoint)
        raise CleaningError(f"cannot list {pattern}: {error_reason(exc)}{CREDENTIALS_HINT}") from exc
    files = []
    for key, info in sorted(infos.items()):
        if info.get("type") == "directory":
            continue
        url = f"{scheme}://{key.removeprefix(scheme + '://')}"
        version = str(info.get("ETag") or info.get("etag") or info.get("generation") or info.get("mtime") or "")
        files.append(RemoteFile(url, int(info.get("size") or 0), version.strip('"')))
    return files


def open_remote(file: RemoteFile) -> IO[bytes]:
    """A seekable binary stream of the object, read ahead in large blocks."""
    fs, path = filesystem(file.url)
    return fs.open(path, "rb", block_size=READ_BLOCK, cache_type="readahead")


def source_names(urls: list[str]) -> list[str]:
    """Object names relative to their common prefix folder, like local inputs' names."""
    keys = [_SCHEME.sub("", u) for u in urls]
    root = posixpath.commonpath([posixpath.dirname(k) for k in keys]) if keys else ""
    return [posixpath.relpath(k, root) if root else k for k in keys]


def filesystem(url: str) -> tuple[Any, str]:
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:  # e.g. gs:// without gcsfs installed
        raise CleaningError(f"cannot read {url}: {exc}") from exc


def error_reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


CREDENTIALS_HINT = (
    " (S3 credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE;"
    " AWS_ENDPOINT_URL for an S3-compatible store)"
)
