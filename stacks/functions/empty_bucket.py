"""CloudFormation custom resource: empty a bucket when the stack deletes it (every object version and delete marker).

Deployed inline (no dependencies: boto3 comes from the Lambda runtime) with its own log group, so unlike CDK's
autoDeleteObjects provider it leaves no log group behind on `cdk destroy`. Create and Update do nothing.
"""

import json
import urllib.request

import boto3

s3 = boto3.client("s3")


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
    try:
        if event["RequestType"] == "Delete":
            count = empty(bucket, client)
            print(json.dumps({"bucket": bucket, "deleted": count}))
        respond(event, "SUCCESS", "ok", opener)
    except Exception as error:  # CloudFormation must hear back, or it waits an hour
        print(json.dumps({"bucket": bucket, "error": repr(error)}))
        respond(event, "FAILED", f"emptying {bucket} failed: {error}", opener)
