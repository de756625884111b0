"""The Docker SDK for Python (docker-py) against `shoal manage` on the lab."""
from __future__ import annotations

import io
import json
import tarfile

import docker
import pytest

from tests.support.manager import Manager, start_manager


@pytest.fixture(scope="module")
def sdk(lab, tmp_path_factory):
    manager: Manager = start_manager("nodes://" + ",".join(lab.engines), healthy=3,
                                     log_dir=tmp_path_factory.mktemp("sdk"))
    client = docker.DockerClient(base_url=manager.url.replace("http://", "tcp://"), version="auto")
    yield client
    for container in client.containers.list(all=True):
        container.remove(force=True)
    client.close()
    manager.stop()


def test_sdk_sees_the_cluster(sdk):
    info = sdk.info()
    assert ["Nodes", "3"] in info["SystemStatus"]
    assert sdk.version()["ApiVersion"] == "1.41"
    assert "busybox:latest" in {tag for image in sdk.images.list() for tag in image.tags}


def test_sdk_run_exec_attach_and_logs(sdk):
    assert sdk.containers.run("busybox", ["echo", "from-sdk"], remove=True) == b"from-sdk\n"
    box = sdk.containers.run("busybox", ["sh", "-c", "echo started; sleep 300"], detach=True,
                             name="sdkbox", environment=["constraint:node==node2"])
    box.reload()
    assert box.attrs["Node"]["Name"] == "node2"
    result = box.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"], demux=True)
    assert (result.exit_code, result.output) == (3, (b"out\n", b"err\n"))
    assert box.logs() == b"started\n"
    assert [c.name for c in sdk.containers.list(filters={"name": "sdkbox"})] == ["sdkbox"]
    box.stop(timeout=1)
    assert box.wait()["StatusCode"] == 137
    box.remove()
    with pytest.raises(docker.errors.NotFound):
        sdk.containers.get("sdkbox")


def test_sdk_errors_are_docker_errors(sdk):
    with pytest.raises(docker.errors.APIError) as err:
        sdk.containers.run("busybox", "true", environment=["constraint:size==nosuch"], detach=True)
    assert err.value.status_code == 500
    assert "Unable to find a node that satisfies" in err.value.explanation


def test_sdk_save_by_name_and_id_and_load_on_every_node(sdk):
    """`Image.save()` is `GET /images/{id or name}/get` (the CLI sends `/images/get?names=`);
    `images.load` reads the per-node `Loaded image:` lines."""
    sdk.images.get("busybox").tag("sdksaved", "1")
    saved = sdk.images.get("sdksaved:1")
    with tarfile.open(fileobj=io.BytesIO(b"".join(saved.save()))) as tar:  # by ID: no tag inside
        assert json.load(tar.extractfile("manifest.json"))[0]["Config"].startswith(saved.id.removeprefix("sha256:"))
    archive = b"".join(saved.save(named="sdksaved:1"))
    sdk.images.remove("sdksaved:1")
    with pytest.raises(docker.errors.ImageNotFound):
        sdk.images.get("sdksaved:1")
    try:
        loaded = sdk.images.load(archive)
        assert loaded and all("sdksaved:1" in image.tags for image in loaded)
        listed = sdk.images.list(name="sdksaved")
        assert len(listed) == 1 and "sdksaved:1" in listed[0].tags  # once, grouped by ID
    finally:
        sdk.images.remove("sdksaved:1")
    with pytest.raises(docker.errors.NotFound) as err:
        b"".join(sdk.api.get_image("nosuch:1"))
    assert err.value.explanation == "Unable to find a healthy engine containing all images: [nosuch:1]"
