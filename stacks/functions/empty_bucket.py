"""CloudFormation custom resource: empty a bucket when the stack deletes it (every object version and delete marker).

Deployed inline (no dependencies: boto3 comes from the Lambda runtime) with its own log group, so unlike CDK's
autoDeleteObjects provider it leaves no log group behind on `cdk destroy`. Create and Update do nothing.

On Delete it guards like CDK's auto-delete-objects handler does:
- it empties only a bucket that still carries the EMPTY_ON_DELETE_TAG tag: turning `retain_bucket` on removes the
  tag in the same update, before CloudFormation deletes this resource, so a retained bucket keeps its images;
- a bucket that is already gone is success, not a failed destroy;
- it first adds a statement to the bucket policy that denies every upload, so objects written while it empties
  (a request racing the destroy) cannot make the bucket's own deletion fail.
"""

import json
import urllib.request

import boto3

s3 = boto3.client("s3")
EMPTY_ON_DELETE_TAG = "sagemaker-model-api:empty-on-delete"
DENY_SID = "DenyUploadsWhileEmptying"


def empty(bucket: str, client=None) -> int:
    """Delete every object version and delete marker in bucket; the number deleted."""
    client = client or s3
    deleted = 0
    while True:
        # Always the first page: markers of a listing shift under the deletions, a fresh listing does not.
        page = client.list_object_versions(Bucket=bucket, MaxKeys=1000)
        keys = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])][:1000]
        if not keys:
            return deleted
        result = client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        if result.get("Errors"):
            raise RuntimeError(f"could not delete {len(result['Errors'])} objects: {result['Errors'][:3]}")
        deleted += len(keys)


def marked_for_emptying(bucket: str, client) -> bool:
    try:
        tags = client.get_bucket_tagging(Bucket=bucket).get("TagSet", [])
    except client.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchTagSet":
            return False
        raise
    return any(t.get("Key") == EMPTY_ON_DELETE_TAG and t.get("Value") == "true" for t in tags)


def deny_uploads(bucket: str, client) -> None:
    """Add (once) a statement denying s3:PutObject to everyone, keeping the rest of the bucket policy."""
    try:
        policy = json.loads(client.get_bucket_policy(Bucket=bucket)["Policy"])
    except client.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") != "NoSuchBucketPolicy":
            raise
        policy = {"Version": "2012-10-17", "Statement": []}
    statements = [s for s in policy.get("Statement", []) if s.get("Sid") != DENY_SID]
    statements.append({"Sid": DENY_SID, "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                       "Resource": f"arn:{partition_of(client)}:s3:::{bucket}/*"})
    policy["Statement"] = statements
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def partition_of(client) -> str:
    region = client.meta.region_name or ""
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


def on_delete(bucket: str, client) -> dict:
    try:
        if not marked_for_emptying(bucket, client):
            return {"bucket": bucket, "kept": True}
        deny_uploads(bucket, client)
        return {"bucket": bucket, "deleted": empty(bucket, client)}
    except client.exceptions.NoSuchBucket:  # botocore raises this class for the code from any S3 operation
        return {"bucket": bucket, "already_gone": True}


def respond(event: dict, status: str, reason: str, opener=urllib.request.urlopen) -> None:
    body = json.dumps({
        "Status": status, "Reason": reason[:1000],
        "PhysicalResourceId": event.get("PhysicalResourceId") or f"empty-{event['ResourceProperties']['BucketName']}",
        "StackId": event["StackId"], "RequestId": event["RequestId"], "LogicalResourceId": event["LogicalResourceId"],
    }).encode()
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT",
                                     headers={"Content-Type": "", "Content-Length": str(len(body))})
    opener(request, timeout=30).close()


def handler(event, context, client=None, opener=urllib.request.urlopen):
    bucket = event["ResourceProperties"]["BucketName"]
    client = client or s3
    try:
        if event["RequestType"] == "Delete":
            print(json.dumps(on_delete(bucket, client)))
        respond(event, "SUCCESS", "ok", opener)
    except Exception as error:  # CloudFormation must hear back, or it waits an hour
        print(json.dumps({"bucket": bucket, "error": repr(error)}))
        respond(event, "FAILED", f"emptying {bucket} failed: {error}", opener)
