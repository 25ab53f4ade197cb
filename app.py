#!/usr/bin/env python3
"""CDK entry: read the settings, build the stack, run cdk-nag's AwsSolutions checks."""

import os
import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from deployment.settings import Settings, SettingsError
from stacks.model_api_stack import ModelApiStack


def build_app(context: dict | None = None) -> cdk.App:
    app = cdk.App(context=context) if context is not None else cdk.App()
    settings = Settings.from_context(app.node)
    env = cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=settings.region) \
        if settings.region else None
    ModelApiStack(app, settings.stack_name, settings=settings, env=env)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


if __name__ == "__main__":
    try:
        application = build_app()
    except SettingsError as error:
        print(error, file=sys.stderr)
        sys.exit(1)
    assembly = application.synth()
    # The OpenAPI document beside the template (the deployed API serves the same at GET /openapi.json).
    for stack in application.node.children:
        if isinstance(stack, ModelApiStack):
            Path(assembly.directory, "openapi.json").write_text(stack.openapi)
