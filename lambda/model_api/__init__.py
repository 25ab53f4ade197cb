"""The request path of the Model API: pure pipeline modules plus one edge module (aws.py) that talks to AWS.

This package ships as the Lambda asset, and the CDK app and local mode import the same modules (schema, errors),
so each definition exists once. It depends on nothing but the standard library and, in aws.py, boto3.
"""
