"""Hosting modes own their options and their construct hooks (deployment.hosting): a mode added as one class and its
registration in HOSTING_MODES (tests/example_hosting.py, a pinned fleet) is accepted by the settings, refused the
options it does not read with the reason it gives, deployed by the stack and costed, with no other edit."""

from __future__ import annotations

import json

import example_hosting
import pytest
from aws_cdk.assertions import Template

from deployment.hosting import HOSTING_MODES, hosting_options
from deployment.model_catalog import ModelSpec
from deployment.settings import Settings, SettingsError
from ops import cost, docs

PINNED = {"models": "gpt2-cpu", "gpt2-cpu.hosting": "pinned", "gpt2-cpu.pinned_instances": "3"}


@pytest.fixture
def pinned(monkeypatch):
    monkeypatch.setitem(HOSTING_MODES, "pinned", example_hosting.Pinned)
    return example_hosting.Pinned


def test_each_hosting_option_is_a_model_field_some_mode_reads():
    options = hosting_options()
    assert set(options) <= set(ModelSpec.__dataclass_fields__)
    assert options["memory_mb"] == ("serverless", "shared") and options["target_backlog"] == ("async",)
    for mode in HOSTING_MODES.values():  # a mode's reasons are about options it refuses, never its own
        assert not set(mode.not_options) & set(mode.options), mode.name
        assert set(mode.not_options) <= set(options), mode.name


def test_an_option_of_another_mode_is_refused_with_the_modes_that_read_it():
    with pytest.raises(SettingsError) as refused:
        Settings.from_values({"models": "gpt2-cpu", "gpt2-cpu.max_concurrency": "3", "gpt2-cpu.target_backlog": "2"})
    assert "model 'gpt2-cpu': max_concurrency applies to hosting=serverless only" in str(refused.value)
    assert "model 'gpt2-cpu': target_backlog applies to hosting=async only (realtime scales on target_invocations)" \
        in str(refused.value)
    # A mode's own option at its default is not "set": the catalog's defaults pass under every mode.
    for mode in HOSTING_MODES:
        if mode != "serverless":  # the gpt2-cpu preset needs no GPU; serverless takes it as well
            Settings.from_values({"models": "gpt2-cpu", "gpt2-cpu.hosting": mode})


def test_a_mode_option_is_unknown_until_its_mode_is_registered():
    with pytest.raises(SettingsError, match="models have no field 'pinned_instances'"):
        Settings.from_values(PINNED)


def test_a_new_mode_is_its_class_and_its_registration(pinned, synth_assembly):
    settings = Settings.from_values(PINNED)
    assert settings.catalog[0].hosting == "pinned" and settings.catalog[0].option("pinned_instances") == 3
    with pytest.raises(SettingsError, match=r"max_instances applies to hosting=realtime or async or shared only "
                                            r"\(a pinned fleet does not scale: set pinned_instances\)"):
        Settings.from_values({**PINNED, "gpt2-cpu.max_instances": "4"})
    with pytest.raises(SettingsError, match="pinned_instances must be from 1 to 100"):
        Settings.from_values({**PINNED, "gpt2-cpu.pinned_instances": "0"})
    with pytest.raises(SettingsError, match="gpt2-cpu.pinned_instances: expected a whole number, got 'x'"):
        Settings.from_values({**PINNED, "gpt2-cpu.pinned_instances": "x"})
    # Its option is refused on the other modes, and documented with the others.
    with pytest.raises(SettingsError, match="model 'gpt2-cpu': pinned_instances applies to hosting=pinned only"):
        Settings.from_values({"models": "gpt2-cpu", "gpt2-cpu.pinned_instances": "3"})
    assert "| `pinned_instances` | `2` | hosting=pinned: how many instances the fleet always runs (1..100) |" \
        in docs.settings_page()

    template = Template.from_json(synth_assembly(**PINNED, stack_name="Pinned").get_stack_by_name("Pinned").template)
    config, = template.find_resources("AWS::SageMaker::EndpointConfig").values()
    variant, = config["Properties"]["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.xlarge", 3)
    assert "AsyncInferenceConfig" not in config["Properties"]
    template.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 0)  # its scale hook adds none
    policies = json.dumps(template.find_resources("AWS::IAM::Policy"))
    assert "sagemaker:InvokeEndpoint\"" in policies and "InvokeEndpointAsync" not in policies

    row, = [r for r in cost.rows(settings, "us-east-1") if r.model == "gpt2-cpu"]
    assert (row.hosting, row.instances) == ("pinned", "3 (pinned)")
    assert row.hourly_min == row.hourly_max and row.idle_monthly == pytest.approx(row.hourly_min * 730)
