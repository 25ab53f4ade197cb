"""The private bucket that holds generated images until their presigned URLs (and then the objects) expire, and the
jobs of async models (requests, SageMaker's answers and failures, finished results) until they expire too."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from aws_cdk import (
    Acknowledgment,
    CfnCustomResource,
    Duration,
    RemovalPolicy,
    Stack,
    Tags,
    Validations,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from deployment.lambda_source import ASSET_EXCLUDE
from stacks.function_logs import own_logs_role
from stacks.functions.empty_bucket import EMPTY_ON_DELETE_TAG

EMPTY_BUCKET_CODE = Path(__file__).resolve().parent / "functions" / "empty_bucket.py"


class ImageBucket(Construct):
    """A bucket for generated images.

    Props:
      expiry_days: objects under key_prefix are deleted this many days after creation (default 7).
      key_prefix: where images go (default "images/"); grants and the lifecycle rule cover only this prefix.
      job_prefix: where async jobs live (e.g. "jobs/"), expiring like images; None: no async model, no jobs.
      batch_prefix: where batch transform jobs keep their input and output files (e.g. "batch/"), expiring like
        images; None: no model takes batch jobs.
      encryption_key: a customer KMS key; None for S3-managed encryption (SSE-S3, the default).
      retain: keep the bucket and its images on `cdk destroy` (default False: emptied and deleted).
      log_retention: retention of the emptying function's log group (default one month).

    All public access is blocked, ACLs are disabled and only TLS requests are accepted. Presigned URLs are signed
    by url_signer, a role that may only read under key_prefix (grant_presign lets a function assume it).
    Attributes: bucket, key_prefix, job_prefix, batch_prefix, encryption_key, url_signer, emptier (the function
    emptying it on delete, or None). Methods: grant_presign, grant_image_access, grant_job_access (a model's Lambda),
    job_processing_statements (a model's SageMaker role), job_output_uri, job_failure_uri,
    batch_processing_statements (a model's batch role), batch_model_prefix.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        expiry_days: int = 7,
        key_prefix: str = "images/",
        job_prefix: Optional[str] = None,
        batch_prefix: Optional[str] = None,
        encryption_key: Optional[kms.IKey] = None,
        retain: bool = False,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ):
        super().__init__(scope, construct_id)
        if expiry_days < 1:
            raise ValueError(f"ImageBucket {construct_id}: expiry_days must be at least 1")
        if not key_prefix.endswith("/") or key_prefix.startswith("/"):
            raise ValueError(f"ImageBucket {construct_id}: key_prefix must end with '/' and not start with one")
        if job_prefix is not None and (not job_prefix.endswith("/") or job_prefix.startswith("/")
                                       or job_prefix.startswith(key_prefix) or key_prefix.startswith(job_prefix)):
            raise ValueError(f"ImageBucket {construct_id}: job_prefix must end with '/', not start with one, and "
                             "not overlap key_prefix")
        others = [p for p in (key_prefix, job_prefix) if p is not None]
        if batch_prefix is not None and (not batch_prefix.endswith("/") or batch_prefix.startswith("/") or any(
                p.startswith(batch_prefix) or batch_prefix.startswith(p) for p in others)):
            raise ValueError(f"ImageBucket {construct_id}: batch_prefix must end with '/', not start with one, and "
                             "not overlap key_prefix or job_prefix")
        self.key_prefix = key_prefix
        self.job_prefix = job_prefix
        self.batch_prefix = batch_prefix
        self.encryption_key = encryption_key
        self.bucket = s3.Bucket(
            self, "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            encryption=s3.BucketEncryption.KMS if encryption_key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=encryption_key,
            # One KMS data key per bucket rather than per object: far fewer KMS calls (and costs) per image.
            bucket_key_enabled=True if encryption_key else None,
            lifecycle_rules=[s3.LifecycleRule(
                id="expire-generated-images",
                prefix=key_prefix,
                expiration=Duration.days(expiry_days),
                abort_incomplete_multipart_upload_after=Duration.days(1),
            )] + ([s3.LifecycleRule(
                id="expire-async-jobs",
                prefix=job_prefix,
                expiration=Duration.days(expiry_days),
                abort_incomplete_multipart_upload_after=Duration.days(1),
            )] if job_prefix else []) + ([s3.LifecycleRule(
                id="expire-batch-jobs",
                prefix=batch_prefix,
                expiration=Duration.days(expiry_days),
                # SageMaker uploads batch results in parts and says a network outage can leave an upload behind
                # (Developer Guide, "Use Batch Transform": errors).
                abort_incomplete_multipart_upload_after=Duration.days(1),
            )] if batch_prefix else []),
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        self.url_signer: Optional[iam.Role] = None  # made by the first grant_presign
        if not retain:
            Tags.of(self.bucket).add(EMPTY_ON_DELETE_TAG, "true")
        self.emptier = None if retain else self._empty_on_delete(log_retention)

    def _empty_on_delete(self, log_retention: logs.RetentionDays) -> lambda_.Function:
        """A custom resource that empties the bucket before CloudFormation deletes it. Not CDK's autoDeleteObjects:
        its provider's log group is created by Lambda at run time and outlives the stack."""
        log_group, role = own_logs_role(self, log_retention=log_retention, log_group_id="EmptierLogs",
                                        role_id="EmptierRole",
                                        description="Empties the image bucket when the stack is deleted")
        # Tagging: is it still to be emptied (see EMPTY_ON_DELETE_TAG); policy: deny uploads that race the delete.
        iam.Grant.add_to_principal(grantee=role, actions=["s3:GetBucketPolicy", "s3:GetBucketTagging",
                                                          "s3:ListBucket", "s3:ListBucketVersions",
                                                          "s3:PutBucketPolicy"],
                                   resource_arns=[self.bucket.bucket_arn])
        iam.Grant.add_to_principal(grantee=role, actions=["s3:DeleteObject", "s3:DeleteObjectVersion"],
                                   resource_arns=[self.bucket.arn_for_objects("*")])
        function = lambda_.Function(
            self, "Emptier",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            handler="empty_bucket.handler",
            # An asset, not inline code: CloudFormation's inline ZipFile stops at 4 KB.
            code=lambda_.Code.from_asset(str(EMPTY_BUCKET_CODE.parent), exclude=ASSET_EXCLUDE),
            role=role,
            log_group=log_group,
            timeout=Duration.minutes(15),
            description="Empties the image bucket on stack delete",
        )
        bucket_id = Stack.of(self).get_logical_id(self.bucket.node.default_child)
        Validations.of(role).acknowledge(Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/*]",
            reason="Emptying a bucket means deleting every object in it, whose keys are unknown at deploy time; the "
                   "grant is limited to this one bucket and runs only on stack delete."))
        resource = CfnCustomResource(self, "EmptyOnDelete", service_token=function.function_arn)
        resource.add_property_override("BucketName", self.bucket.bucket_name)
        # The resource depends on the function, which depends on its role and policy: CloudFormation deletes the
        # resource (emptying the bucket) while the function can still run, and the bucket after it. It depends on
        # the bucket policy too, which the emptier extends with its write denial, so that is deleted after it.
        resource.node.add_dependency(self.bucket.policy)
        return function

    def grant_presign(self, role: iam.Role) -> iam.Role:
        """Let role assume url_signer to sign URLs. url_signer may only read under key_prefix and trusts exactly
        the roles granted here. Returns url_signer."""
        if self.url_signer is None:
            self.url_signer = iam.Role(
                self, "UrlSigner",
                assumed_by=iam.ArnPrincipal(role.role_arn),
                description="Signs the presigned URLs of generated images: read-only, images prefix only",
                # Sessions assumed from a Lambda's session are role chaining: AWS caps them at 1 hour anyway.
                max_session_duration=Duration.hours(1),
            )
            iam.Grant.add_to_principal(grantee=self.url_signer, actions=["s3:GetObject"],
                                       resource_arns=[self.bucket.arn_for_objects(self.key_prefix + "*")])
            if self.encryption_key is not None:
                # Whoever follows a presigned URL reads with the signer's permissions, so it decrypts too.
                self.url_signer.add_to_principal_policy(self.key_statement(["kms:Decrypt"]))
            bucket_id = Stack.of(self).get_logical_id(self.bucket.node.default_child)
            Validations.of(self.url_signer).acknowledge(Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{self.key_prefix}*]",
                reason="Image keys are uuid4s made per request, so signing a URL for any of them needs read on the "
                       "images/ prefix; the role can do nothing else."))
        else:
            self.url_signer.assume_role_policy.add_statements(iam.PolicyStatement(
                actions=["sts:AssumeRole"], principals=[iam.ArnPrincipal(role.role_arn)]))
        iam.Grant.add_to_principal(grantee=role, actions=["sts:AssumeRole"],
                                   resource_arns=[self.url_signer.role_arn])
        return self.url_signer

    def grant_image_access(self, grantee: iam.IGrantable) -> None:
        """Write and delete (to roll back a partly stored request) under key_prefix, nothing else: no reading (URLs
        are signed by url_signer), no listing, no other prefix, no bucket configuration."""
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:DeleteObject", "s3:PutObject"],
            resource_arns=[self.bucket.arn_for_objects(self.key_prefix + "*")],
        )
        if self.encryption_key is not None:
            # SSE-KMS uploads need a data key (and Decrypt where S3 re-reads it, e.g. bucket keys, multipart).
            grantee.grant_principal.add_to_principal_policy(self.key_statement(["kms:Decrypt", "kms:GenerateDataKey"]))

    # ------------------------------------------------------------------------------------------------ async jobs
    # Layout (lambda/model_api/jobs.py): <job_prefix><job id>/input-<model>.json, job.json and result.json, written
    # by the model's Lambda; SageMaker writes answers under <job_prefix>output/<model>/ and errors under
    # <job_prefix>failures/<model>/ (job ids are hex, so neither folder can be a job's).

    def _job_prefix(self) -> str:
        if self.job_prefix is None:
            raise ValueError(f"ImageBucket {self.node.id}: made without job_prefix, so it holds no jobs")
        return self.job_prefix

    def job_output_uri(self, model: str) -> str:
        return f"s3://{self.bucket.bucket_name}/{self._job_prefix()}output/{model}"

    def job_failure_uri(self, model: str) -> str:
        return f"s3://{self.bucket.bucket_name}/{self._job_prefix()}failures/{model}"

    def grant_job_access(self, grantee: iam.IGrantable, model: str) -> None:
        """What a model's Lambda needs for its jobs: write (and roll back) its own job inputs, write job records and
        results, read anything under the job prefix (records, SageMaker's answers, results: the function that
        serves GET /jobs/{job_id} reads every model's jobs), and list only that prefix, so a job that does not exist
        is S3's 404, not its 403 (S3 answers a missing key with 403 to a caller without s3:ListBucket)."""
        prefix = self._job_prefix()
        iam.Grant.add_to_principal(grantee=grantee, actions=["s3:DeleteObject", "s3:PutObject"],
                                   resource_arns=[self.bucket.arn_for_objects(f"{prefix}*/input-{model}.json")])
        iam.Grant.add_to_principal(grantee=grantee, actions=["s3:PutObject"],
                                   resource_arns=[self.bucket.arn_for_objects(f"{prefix}*/job.json"),
                                                  self.bucket.arn_for_objects(f"{prefix}*/result.json")])
        iam.Grant.add_to_principal(grantee=grantee, actions=["s3:GetObject"],
                                   resource_arns=[self.bucket.arn_for_objects(f"{prefix}*")])
        grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}}))
        if self.encryption_key is not None:
            grantee.grant_principal.add_to_principal_policy(self.key_statement(["kms:Decrypt", "kms:GenerateDataKey"]))
        self.acknowledge_job_wildcards(grantee, [f"*/input-{model}.json", "*/job.json", "*/result.json", "*"],
                                       "Job ids are 128-bit random values made per request, so a model's Lambda "
                                       "needs its job files under any id; it writes only its own inputs and the job "
                                       "records and results, and reads only the jobs/ prefix.")

    def acknowledge_job_wildcards(self, scope, patterns: list[str], reason: str) -> None:
        """cdk-nag IAM5 acknowledgments of job-prefix wildcards (`patterns` after the prefix) on scope."""
        bucket_id = Stack.of(self).get_logical_id(self.bucket.node.default_child)
        for pattern in patterns:
            Validations.of(scope).acknowledge(Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{self._job_prefix()}{pattern}]", reason=reason))

    def job_processing_statements(self, model: str) -> list[iam.PolicyStatement]:
        """What a model's SageMaker execution role needs to run its jobs: read that model's job inputs, write its
        answers and failures. Statements, so the endpoint can put them in its role's inline policy."""
        prefix = self._job_prefix()
        statements = [
            iam.PolicyStatement(sid="ReadJobInputs", actions=["s3:GetObject"],
                                resources=[self.bucket.arn_for_objects(f"{prefix}*/input-{model}.json")]),
            iam.PolicyStatement(sid="WriteJobOutcomes", actions=["s3:PutObject"],
                                resources=[self.bucket.arn_for_objects(f"{prefix}output/{model}/*"),
                                           self.bucket.arn_for_objects(f"{prefix}failures/{model}/*")]),
        ]
        if self.encryption_key is not None:
            # SageMaker writes answers "encrypted with KmsKeyId" (AsyncInferenceOutputConfig): through S3, or itself.
            statements.append(self.key_statement(["kms:Decrypt", "kms:GenerateDataKey"], "UseJobKey",
                                                 ("s3", "sagemaker")))
        return statements

    # ------------------------------------------------------------------------------------------------ batch jobs
    # Layout (ops/batch.py): <batch_prefix><model>/<job name>/input/part-NNNNN.jsonl, written by `make batch`;
    # SageMaker writes <batch_prefix><model>/<job name>/output/part-NNNNN.jsonl.out.

    def batch_model_prefix(self, model: str) -> str:
        if self.batch_prefix is None:
            raise ValueError(f"ImageBucket {self.node.id}: made without batch_prefix, so it holds no batch jobs")
        return f"{self.batch_prefix}{model}/"

    def batch_processing_statements(self, model: str) -> list[iam.PolicyStatement]:
        """What a model's batch role needs: list and read that model's job inputs, write its job outputs (and abort
        its own multipart uploads, which SageMaker does on an error). A transform job runs with its model's role,
        fixed at deploy time, so the scope is the model's batch folder: job names are only known when a job starts.
        """
        prefix = self.batch_model_prefix(model)
        statements = [
            # S3Prefix input: SageMaker lists the job's input folder to find its files.
            iam.PolicyStatement(sid="ListBatchInputs", actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn],
                                conditions={"StringLike": {"s3:prefix": [f"{prefix}*/input/*"]}}),
            iam.PolicyStatement(sid="ReadBatchInputs", actions=["s3:GetObject"],
                                resources=[self.bucket.arn_for_objects(f"{prefix}*/input/*")]),
            iam.PolicyStatement(sid="WriteBatchOutputs", actions=["s3:AbortMultipartUpload", "s3:PutObject"],
                                resources=[self.bucket.arn_for_objects(f"{prefix}*/output/*")]),
        ]
        if self.encryption_key is not None:
            statements.append(self.key_statement(["kms:Decrypt", "kms:GenerateDataKey"], "UseBatchKey"))
        return statements

    def key_statement(self, actions: list[str], sid: Optional[str] = None,
                      services: tuple[str, ...] = ("s3",)) -> iam.PolicyStatement:
        """Use of the bucket's key only through the services that encrypt this bucket's objects with it
        (kms:ViaService "<service>.<region>.amazonaws.com", AWS KMS Developer Guide, "kms:ViaService"): a leaked
        session of a role cannot call KMS with the key directly."""
        region = Stack.of(self).region
        return iam.PolicyStatement(sid=sid, actions=actions, resources=[self.encryption_key.key_arn], conditions={
            "StringEquals": {"kms:ViaService": [f"{service}.{region}.amazonaws.com" for service in services]}})
