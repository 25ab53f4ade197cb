"""The libraries local mode and these tests run the inference code with share their major versions with the
container the code runs in on SageMaker (deployment/container_images.HF_INFERENCE_LIBRARIES), so a test that passes here
exercises the API the container has."""

from importlib.metadata import version

import pytest

from deployment.container_images import HF_INFERENCE_LIBRARIES, HF_INFERENCE_TAGS


@pytest.mark.parametrize("library", sorted(HF_INFERENCE_LIBRARIES))
def test_local_libraries_share_the_containers_major_version(library):
    container = HF_INFERENCE_LIBRARIES[library]
    local = version(library).split("+")[0]
    assert local.split(".")[0] == container.split(".")[0], f"{library}: local {local}, container {container}"


def test_the_library_table_matches_the_image_tags():
    # The tag names the versions: <torch>-transformers<transformers>-...
    for tag in HF_INFERENCE_TAGS.values():
        assert tag.startswith(f"{HF_INFERENCE_LIBRARIES['torch']}-transformers{HF_INFERENCE_LIBRARIES['transformers']}-")
