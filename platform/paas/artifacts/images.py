"""OCI images: each release's stack layer + a layer per shared runtime its slug names (at
/opt/paas/runtimes/NAME, paas.artifacts.runtimes) + app layer + one config per process
type, in an OCI image layout under PAAS_HOME/images (content-addressed: identical layers
stored once; a stack's or runtime's layer is tarred once and shared by every release).

A release names the digest of its image index; the index lists one manifest per process
type (annotated `org.opencontainers.image.ref.name` = the type), each with an entrypoint
that runs that process type under tini, as the non-root dyno user, in /app. `export` writes
an oci-archive (a tar of a layout holding just one release) that skopeo, umoci and
`docker load` accept.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from paas.artifacts.runtimes import MOUNT as RUNTIMES_AT
from paas.domain.errors import CommandFailed, NotFound, PaasError
from paas.host import cleanup, procs
from paas.isolation.oci import PROFILE_SCRIPT

LAYER = "application/vnd.oci.image.layer.v1.tar"
CONFIG = "application/vnd.oci.image.config.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"
TAR_FLAGS = ["--sort=name", "--mtime=@0", "--numeric-owner", "--xattrs"]


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    def json(self, **annotations: str) -> dict[str, object]:
        found: dict[str, object] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if annotations:
            found["annotations"] = annotations
        return found


@dataclass(frozen=True)
class ImageRequest:
    stack: str
    stack_rootfs: Path
    app_layer_dir: Path
    process_types: dict[str, str]
    uid: int
    gid: int
    runtimes: tuple[Path, ...] = ()  # the shared runtimes' entries (named by their content)


class ImageStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.blobs = directory / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
        (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')

    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest.removeprefix("sha256:")

    def has(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def reuse(self, digest: str) -> bool:
        """Whether the blob is stored; if so its time is renewed, so a collector running
        while this image is built sees it as new and keeps it."""
        try:
            os.utime(self.blob_path(digest))
        except FileNotFoundError:
            return False
        return True

    def add_bytes(self, data: bytes, media_type: str) -> Descriptor:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.reuse(digest):
            fd, tmp = tempfile.mkstemp(dir=self.blobs)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.blob_path(digest))
        return Descriptor(media_type, digest, len(data))

    def add_json(self, value: object, media_type: str) -> Descriptor:
        return self.add_bytes(json.dumps(value, sort_keys=True).encode(), media_type)

    def add_tar(self, source: Path, members: list[str]) -> Descriptor:
        """A deterministic, uncompressed layer tar of `members` of `source`."""
        fd, tmp = tempfile.mkstemp(dir=self.blobs)
        os.close(fd)
        try:
            procs.run(["tar", *TAR_FLAGS, "-cf", tmp, "-C", str(source), *members], timeout=900)
        except PaasError:
            cleanup.remove_file(Path(tmp))  # half a layer (a full disk) is no blob
            raise
        digest = hashlib.sha256()
        with open(tmp, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        name = "sha256:" + digest.hexdigest()
        size = Path(tmp).stat().st_size
        if self.reuse(name):
            os.unlink(tmp)
        else:
            os.replace(tmp, self.blob_path(name))
        return Descriptor(LAYER, name, size)

    def stack_layer(self, stack: str, rootfs: Path) -> Descriptor:
        """Tarred once per stack version (the rootfs path names the version)."""
        cache = self.directory / "stack-layers.json"
        known = json.loads(cache.read_text()) if cache.exists() else {}
        key = f"{stack}:{rootfs}"
        if key in known and self.reuse(known[key]["digest"]):
            return Descriptor(LAYER, known[key]["digest"], known[key]["size"])
        layer = self.add_tar(rootfs, ["."])
        known[key] = {"digest": layer.digest, "size": layer.size}
        cache.write_text(json.dumps(known))
        return layer

    def runtime_layer(self, entry: Path) -> Descriptor:
        """A shared runtime's entry as a layer at /opt/paas/runtimes/NAME; tarred once
        (the entry's name is its content): every release on it shares the blob."""
        cache = self.directory / "runtime-layers.json"
        known = json.loads(cache.read_text()) if cache.exists() else {}
        if entry.name in known and self.reuse(known[entry.name]["digest"]):
            return Descriptor(LAYER, known[entry.name]["digest"], known[entry.name]["size"])
        skeleton = Path(tempfile.mkdtemp(dir=self.directory, prefix=".runtime-"))
        try:
            below = skeleton / RUNTIMES_AT.relative_to("/")
            below.mkdir(parents=True)
            for path in (below, *below.parents):
                if path == skeleton:
                    break
                path.chmod(0o755)
            link = ["cp", "-al", str(entry), str(below / entry.name)]
            try:  # hard links: no copy of the tree (the store is on PAAS_HOME too)
                procs.run(link, timeout=300)
            except CommandFailed:
                procs.run(["cp", "-a", str(entry), str(below / entry.name)], timeout=600)
            layer = self.add_tar(skeleton, [RUNTIMES_AT.parts[1]])
        finally:
            cleanup.remove_tree(skeleton)
        known = json.loads(cache.read_text()) if cache.exists() else {}
        known[entry.name] = {"digest": layer.digest, "size": layer.size}
        fd, tmp = tempfile.mkstemp(dir=self.directory)
        with os.fdopen(fd, "w") as f:
            json.dump(known, f)
        os.replace(tmp, cache)
        return layer

    def build(self, request: ImageRequest) -> str:
        """Writes the image of one release; returns the digest of its image index."""
        layers = [
            self.stack_layer(request.stack, request.stack_rootfs),
            *(self.runtime_layer(entry) for entry in request.runtimes),
            self.add_tar(request.app_layer_dir, ["app"]),
        ]
        manifests = []
        for process_type, command in sorted(request.process_types.items()):
            config = self.add_json(image_config(request, command, layers), CONFIG)
            manifest = self.add_json(
                {
                    "schemaVersion": 2,
                    "mediaType": MANIFEST,
                    "config": config.json(),
                    "layers": [layer.json() for layer in layers],
                },
                MANIFEST,
            )
            manifests.append(manifest.json(**{REF_NAME: process_type}))
        index = self.add_json(
            {"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}, INDEX
        )
        return index.digest

    def reachable(self, index_digest: str) -> set[str]:
        """Every blob an image index needs: itself, its manifests, configs and layers."""
        found = {index_digest}
        index = json.loads(self.blob_path(index_digest).read_text())
        for entry in index["manifests"]:
            found.add(entry["digest"])
            manifest = json.loads(self.blob_path(entry["digest"]).read_text())
            found.add(manifest["config"]["digest"])
            found.update(layer["digest"] for layer in manifest["layers"])
        return found

    def write_index(self, refs: dict[str, str]) -> None:
        """The layout's own index.json: one entry per kept release image (`APP-vN`)."""
        manifests = [
            Descriptor(INDEX, digest, self.blob_path(digest).stat().st_size).json(**{REF_NAME: ref})
            for ref, digest in sorted(refs.items())
            if self.has(digest)
        ]
        fd, tmp = tempfile.mkstemp(dir=self.directory)
        with os.fdopen(fd, "w") as f:
            json.dump({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}, f)
        os.replace(tmp, self.directory / "index.json")

    def runtime_layers(self, names: Iterable[str]) -> set[str]:
        """The layer digests of the runtimes `names` (those tarred already)."""
        cache = self.directory / "runtime-layers.json"
        known = json.loads(cache.read_text()) if cache.exists() else {}
        return {known[n]["digest"] for n in names if n in known}

    def collect(
        self,
        keep: Iterable[str],
        spare_since: float | None = None,
        stale: float | None = None,
        layers: Iterable[str] = (),
    ) -> list[str]:
        """Deletes every blob no kept image needs, except blobs changed at or after
        `spare_since` (an image being built), `layers` (a stored runtime's, made before
        any image names it), and temporary files older than `stale`; returns the deleted
        digests (and temporary file names)."""
        needed: set[str] = set(layers)
        for digest in keep:
            if self.has(digest):
                needed |= self.reachable(digest)
        deleted = []
        for blob in self.blobs.iterdir():
            changed = blob.lstat().st_ctime
            digest = "sha256:" + blob.name
            if len(blob.name) != 64:
                doomed, digest = stale is not None and changed < stale, blob.name
            else:
                fresh = spare_since is not None and changed >= spare_since
                doomed = digest not in needed and not fresh
            if doomed:
                blob.unlink(missing_ok=True)
                deleted.append(digest)
        return deleted

    def export(self, index_digest: str) -> Iterator[bytes]:
        """Streams an oci-archive holding exactly this image; refs are the process types."""
        if not self.has(index_digest):
            raise NotFound(f"image {index_digest[:19]} was garbage-collected")
        staging = Path(tempfile.mkdtemp(dir=self.directory, prefix=".export-"))
        try:
            blobs = staging / "blobs" / "sha256"
            blobs.mkdir(parents=True)
            for digest in self.reachable(index_digest):
                os.link(self.blob_path(digest), blobs / digest.removeprefix("sha256:"))
            index = json.loads(self.blob_path(index_digest).read_text())
            (staging / "index.json").write_text(json.dumps(index))
            (staging / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
            # Streamed, so not procs.run; its exit status is checked all the same: a
            # failed tar must end the response as an error, not as a short archive.
            argv = ["tar", "-cf", "-", "-C", str(staging), "oci-layout", "index.json", "blobs"]
            tar = subprocess.Popen(argv, stdout=subprocess.PIPE, env=procs.host_env())
            assert tar.stdout is not None
            while chunk := tar.stdout.read(1 << 20):
                yield chunk
            if (code := tar.wait(60)) != 0:
                raise CommandFailed(argv, f"exit status {code}", code)
        finally:
            cleanup.remove_tree(staging)


def image_config(
    request: ImageRequest, command: str, layers: list[Descriptor]
) -> dict[str, object]:
    diff_ids = [layer.digest for layer in layers]  # uncompressed layers: digest = diff id
    return {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": f"{request.uid}:{request.gid}",
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/app", "LANG=C.UTF-8", "PORT=5000"],
            "WorkingDir": "/app",
            "Entrypoint": [
                "/usr/bin/tini",
                "-g",
                "--",
                "/bin/bash",
                "-c",
                PROFILE_SCRIPT + command,
            ],
            "ExposedPorts": {"5000/tcp": {}},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
