"""The OCI image store on a tiny fake stack: layout, sharing, collection."""

import json
from pathlib import Path

from paas.artifacts.images import ImageRequest, ImageStore


def make_request(tmp_path: Path, text: str) -> ImageRequest:
    rootfs = tmp_path / "stack"
    (rootfs / "usr" / "bin").mkdir(parents=True, exist_ok=True)
    (rootfs / "usr" / "bin" / "tool").write_text("stack\n")
    layer = tmp_path / f"layer-{text}"
    (layer / "app").mkdir(parents=True)
    (layer / "app" / "main.py").write_text(text)
    return ImageRequest("debian-12", rootfs, layer, {"web": "serve", "worker": "work"}, 999, 995)


def test_image_index_lists_one_manifest_per_process_type(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    digest = store.build(make_request(tmp_path, "v1"))
    index = json.loads(store.blob_path(digest).read_text())
    refs = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
    assert refs == ["web", "worker"]
    manifest = json.loads(store.blob_path(index["manifests"][0]["digest"]).read_text())
    config = json.loads(store.blob_path(manifest["config"]["digest"]).read_text())
    assert config["config"]["User"] == "999:995" and config["config"]["WorkingDir"] == "/app"
    assert config["config"]["Entrypoint"][0] == "/usr/bin/tini"
    assert config["config"]["Entrypoint"][-1].endswith("serve")
    assert len(manifest["layers"]) == 2


def test_identical_layers_are_stored_once_and_unused_ones_collected(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    first = store.build(make_request(tmp_path, "v1"))
    blobs_after_first = set(store.blobs.iterdir())
    second = store.build(make_request(tmp_path, "v2"))
    new = set(store.blobs.iterdir()) - blobs_after_first
    # A new app layer, two configs, two manifests, one index; the stack layer is shared.
    assert len(new) == 6
    deleted = store.collect([second])
    assert first in deleted and not store.has(first) and store.has(second)
    assert store.reachable(second) == {"sha256:" + p.name for p in store.blobs.iterdir()}


def test_layout_index_names_each_kept_release(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    digest = store.build(make_request(tmp_path, "v1"))
    store.write_index({"demo-v1": digest, "gone-v1": "sha256:" + "0" * 64})
    index = json.loads((tmp_path / "images" / "index.json").read_text())
    assert [
        (m["digest"], m["annotations"]["org.opencontainers.image.ref.name"])
        for m in index["manifests"]
    ] == [(digest, "demo-v1")]
    assert json.loads((tmp_path / "images" / "oci-layout").read_text()) == {
        "imageLayoutVersion": "1.0.0"
    }
